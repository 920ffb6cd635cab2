package breaker_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
)

// hungServer accepts connections in memory and reads each request, but
// never answers it: a model that hangs.
type hungServer struct {
	mu       sync.Mutex
	requests int
	conns    []net.Conn
}

func (s *hungServer) dial(context.Context, string, string) (net.Conn, error) {
	client, server := net.Pipe()
	s.mu.Lock()
	s.conns = append(s.conns, server)
	s.mu.Unlock()
	go func() {
		r := bufio.NewReader(server)
		for {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			_ = req.Body.Close()
			s.mu.Lock()
			s.requests++
			s.mu.Unlock()
		}
	}()
	return client, nil
}

func (s *hungServer) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *hungServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// A model that hangs is the breaker's business as much as one that
// answers 503: when the transport gives up on it (its
// ResponseHeaderTimeout, a dial that times out), the error matches
// context.DeadlineExceeded although the caller's context is alive, and
// is the model's failure, not the caller's.
func TestATransportTimeoutIsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &hungServer{}
		defer srv.close()
		base := &http.Transport{DialContext: srv.dial, ResponseHeaderTimeout: 2 * time.Second}
		defer base.CloseIdleConnections()
		rt := breaker.New()(base)
		plain := func() *http.Request {
			req := chat(t, "m")
			req.URL.Scheme = "http" // the pipe speaks no TLS
			return req
		}
		for range breaker.DefaultConsecutiveFailures {
			_, err := send(t, rt, plain())
			require.ErrorIs(t, err, context.DeadlineExceeded, "the transport's timeout")
		}
		for range 5 {
			_, err := send(t, rt, plain())
			assert.ErrorIs(t, err, breaker.ErrOpen, "open after five timeouts")
		}
		assert.Equal(t, breaker.DefaultConsecutiveFailures, srv.count(), "the requests after the fifth timeout failed fast")
	})
}
