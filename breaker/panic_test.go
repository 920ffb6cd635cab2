package breaker_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// TestAPanickingBaseCountsAsAFailure: a probe whose base transport panics
// still reports its outcome, as a failure, so a half-open breaker opens
// again instead of waiting for its probes forever.
func TestAPanickingBaseCountsAsAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		var panicking atomic.Bool
		base := transport.Func(func(req *http.Request) (*http.Response, error) {
			if panicking.Load() {
				_ = req.Body.Close()
				panic("base transport bug")
			}
			return srv.RoundTrip(req)
		})
		probePanics(t, breaker.New(breaker.WithHalfOpenProbes(1))(base), srv, &panicking)
	})
}

// TestAPanickingStateHookIsRecovered: the hook runs while the breaker
// books an answer the caller is owed; its panic is dropped and the answer
// is returned.
func TestAPanickingStateHookIsRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("m", 503)
		var calls atomic.Int32
		rt := breaker.New(breaker.WithEvents(func(transport.Event) {
			calls.Add(1)
			panic("hook bug")
		}))(srv)
		for i := range 5 {
			status, err := send(t, rt, chat(t, "m"))
			require.NoError(t, err, "request %d", i)
			assert.Equal(t, 503, status)
		}
		assert.Equal(t, int32(1), calls.Load(), "the hook heard the breaker open")
		_, err := send(t, rt, chat(t, "m"))
		assert.ErrorIs(t, err, breaker.ErrOpen)
	})
}

// TestAPanickingIsFailureStillReportsTheProbe: a WithIsFailure that panics
// on a probe's answer (one written for responses, handed an error) still
// lets the probe's outcome be told, as a failure: the half-open breaker
// opens again, and later probes go through, instead of it refusing every
// request with its probes out forever.
func TestAPanickingIsFailureStillReportsTheProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		var panicking atomic.Bool
		rt := breaker.New(breaker.WithHalfOpenProbes(1), breaker.WithIsFailure(func(resp *http.Response, err error) bool {
			if panicking.Load() {
				panic("isFailure bug")
			}
			return resp == nil || resp.StatusCode >= 500
		}))(srv)
		probePanics(t, rt, srv, &panicking)
	})
}

// probePanics opens rt's breaker of model m on srv, sends a probe that
// panics while panicking is set, and checks that the panic reached the
// caller, counted as a failure (the breaker open again), and that the
// next probe goes through.
func probePanics(t *testing.T, rt http.RoundTripper, srv *fakeServer, panicking *atomic.Bool) {
	t.Helper()
	srv.set("m", 503)
	for range 5 {
		_, _ = send(t, rt, chat(t, "m"))
	}
	_, err := send(t, rt, chat(t, "m"))
	require.ErrorIs(t, err, breaker.ErrOpen)

	time.Sleep(breaker.DefaultTimeout)
	panicking.Store(true)
	assert.Panics(t, func() { _, _ = rt.RoundTrip(chat(t, "m")) }, "the probe's panic reaches the caller")
	panicking.Store(false)
	srv.set("m", 200)
	_, err = send(t, rt, chat(t, "m"))
	require.ErrorIs(t, err, breaker.ErrOpen, "the panic counted as a failure: open again")

	time.Sleep(breaker.DefaultTimeout)
	status, err := send(t, rt, chat(t, "m"))
	require.NoError(t, err, "the next probe goes through")
	assert.Equal(t, 200, status)
}
