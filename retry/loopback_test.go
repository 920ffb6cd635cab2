package retry_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/retry"
)

// TestLoopbackConnectionReset runs the decorator over a real connection:
// the server resets the first connection before answering, and the retry
// must send the same body again on a new one.
func TestLoopbackConnectionReset(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		n := len(bodies)
		mu.Unlock()
		if n == 1 {
			conn, _, err := http.NewResponseController(w).Hijack()
			if !assert.NoError(t, err) {
				return
			}
			_ = conn.(*net.TCPConn).SetLinger(0) // close with RST: a reset, not a clean EOF
			_ = conn.Close()
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()

	var events []retry.RetryEvent
	// Rand 0: no backoff, so the test sleeps for nothing in real time.
	p := retry.Policy{Rand: zeroRand, OnRetry: func(e retry.RetryEvent) { events = append(events, e) }}
	client := &http.Client{Transport: wrap(p, base)}
	payload := []byte(`{"model":"m","input":["a","b"]}`)
	resp, err := client.Post(srv.URL+"/v1/embeddings", "application/json", bytes.NewReader(payload))
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ok", readAll(t, resp))

	require.Len(t, events, 1)
	assert.True(t, retry.ShouldRetry(nil, events[0].Err), "%v", events[0].Err)
	assert.ErrorIs(t, events[0].Err, syscall.ECONNRESET)
	assert.Equal(t, srv.URL+"/v1/embeddings", events[0].URL)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{string(payload), string(payload)}, bodies)
}
