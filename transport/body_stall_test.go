package transport_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// stalledRequest is a request whose body has no GetBody and whose
// producer sent its first bytes and then stalls (an io.Pipe fed by a
// goroutine that waits on something that never comes), with a deadline
// a second away. end unblocks the producer, for a test that must end.
func stalledRequest(t *testing.T) (req *http.Request, end func()) {
	t.Helper()
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write([]byte(`{"model":"m","messages":[`)) }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", pr)
	require.NoError(t, err)
	return req, func() { pw.CloseWithError(errors.New("the test is over")) }
}

// within runs f and reports whether it returned within d, and its error
// then; a call still running is ended with end and waited for.
func within(d time.Duration, end func(), f func() error) (bool, error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	time.Sleep(d)
	synctest.Wait()
	select {
	case err := <-done:
		return true, err
	default:
		end()
		<-done
		return false, nil
	}
}

// A request body without GetBody that stalls while Inspect buffers it
// does not hold the request past its deadline, as net/http's Transport
// would not: the body is closed when the request's context ends, and the
// request fails with the context's error, sending nothing.
func TestAStalledBodyIsNotReadPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		req, end := stalledRequest(t)
		sent := 0
		rt := transport.Inspect()(transport.Func(func(r *http.Request) (*http.Response, error) {
			sent++
			_ = r.Body.Close()
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}))
		ok, err := within(2*time.Second, end, func() error {
			resp, err := rt.RoundTrip(req)
			if resp != nil {
				_ = resp.Body.Close()
			}
			return err
		})
		require.True(t, ok, "the request outlived its deadline")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, sent, "nothing is sent")
	})
}

// So does Replay, which buffers a body without GetBody to send it again.
func TestAStalledBodyIsNotBufferedPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		req, end := stalledRequest(t)
		var r transport.Replay
		ok, err := within(2*time.Second, end, func() error { return r.Reset(req, 0) })
		require.True(t, ok, "the body was read past the request's deadline")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
}
