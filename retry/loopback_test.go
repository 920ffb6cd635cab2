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

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// resetOnce is a server that reads the whole request, then resets the
// first connection instead of answering (as a crash after the work is
// done would), and answers "ok" after that. It records every body it read.
func resetOnce(t *testing.T) (srv *httptest.Server, bodies func() []string) {
	var mu sync.Mutex
	var seen []string
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b))
		n := len(seen)
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
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

// TestLoopbackResetAfterTheRequestIsNotRetried runs the decorator over a
// real connection whose server read the request, did the work, and reset
// the connection: an inference call sent again is billed again, so a POST
// that carries no Idempotency-Key gets the error after one attempt.
func TestLoopbackResetAfterTheRequestIsNotRetried(t *testing.T) {
	srv, bodies := resetOnce(t)
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	var rec conformance.EventRecorder
	client := &http.Client{Transport: wrap([]retry.Option{retry.WithRand(zeroRand), retry.WithEvents(rec.Record)}, base)}
	payload := []byte(`{"model":"m","input":["a","b"]}`)
	resp, err := client.Post(srv.URL+"/v1/embeddings", "application/json", bytes.NewReader(payload))
	require.Error(t, err)
	assert.Nil(t, resp)
	assert.ErrorIs(t, err, syscall.ECONNRESET)
	var rerr *retry.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, 1, rerr.Attempts)
	assert.Equal(t, []string{string(payload)}, bodies(), "the server did the work once")
	events := rec.Events()
	require.Len(t, events, 2)
	assert.Equal(t, retry.ReasonNotIdempotent, events[0].Reason, "the give-up says why")
}

// TestLoopbackResetOfAnIdempotentRequestIsRetried: the same reset, for a
// request the server can deduplicate (an Idempotency-Key, as the official
// SDKs send) or that the policy declares idempotent, is sent again,
// byte-identical, on a new connection.
func TestLoopbackResetOfAnIdempotentRequestIsRetried(t *testing.T) {
	payload := []byte(`{"model":"m","input":["a","b"]}`)
	for _, tc := range []struct {
		name string
		key  bool
		opts []retry.Option
	}{
		{"Idempotency-Key", true, nil},
		{"WithIdempotent", false, []retry.Option{retry.WithIdempotent()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, bodies := resetOnce(t)
			base := &http.Transport{}
			defer base.CloseIdleConnections()
			var rec conformance.EventRecorder
			opts := append([]retry.Option{retry.WithRand(zeroRand), retry.WithEvents(rec.Record)}, tc.opts...)
			client := &http.Client{Transport: wrap(opts, base)}
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/embeddings", bytes.NewReader(payload))
			require.NoError(t, err)
			if tc.key {
				req.Header.Set("Idempotency-Key", "job-42")
			}
			resp, err := client.Do(req)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "ok", readAll(t, resp))
			events := rec.Events()
			require.Len(t, events, 2)
			assert.Equal(t, transport.EventRetry, events[0].Kind)
			assert.True(t, retry.ShouldRetry(nil, events[0].Err), "%v", events[0].Err)
			assert.ErrorIs(t, events[0].Err, syscall.ECONNRESET)
			assert.Equal(t, []string{string(payload), string(payload)}, bodies())
		})
	}
}

// TestLoopbackRefusedConnectionIsRetried: a connection that was never made
// sent nothing, so any request is sent again.
func TestLoopbackRefusedConnectionIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	var rec conformance.EventRecorder
	client := &http.Client{Transport: wrap([]retry.Option{retry.WithRand(zeroRand), retry.WithMaxRetries(2),
		retry.WithEvents(rec.Record)}, base)}
	_, err = client.Post("http://"+addr+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(`{}`)))
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	var rerr *retry.Error
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, 3, rerr.Attempts, "refused before anything was written: retried")
}
