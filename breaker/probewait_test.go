package breaker_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
)

// hangingBase sends requests on to srv, but while hang is set it holds
// each request it gets, with no deadline, until the test answers it with
// release: a server that takes a request and does not answer.
type hangingBase struct {
	srv  *fakeServer
	hang atomic.Bool

	mu   sync.Mutex
	held []chan int
}

func (b *hangingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if !b.hang.Load() {
		return b.srv.RoundTrip(req)
	}
	_ = req.Body.Close()
	answer := make(chan int, 1)
	b.mu.Lock()
	b.held = append(b.held, answer)
	b.mu.Unlock()
	status := <-answer
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// holding is how many requests the base has held.
func (b *hangingBase) holding() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held)
}

// release answers the i-th request held with status.
func (b *hangingBase) release(i, status int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.held[i] <- status:
	default: // answered already
	}
}

// releaseAll answers every request held, but those answered already, with
// status: a test that fails leaves none hanging.
func (b *hangingBase) releaseAll(status int) {
	for i := range b.holding() {
		b.release(i, status)
	}
}

// tripAndWait opens rt's breaker of model m with failures from srv and
// waits out its open period: the breaker lets its probes through.
func tripAndWait(t *testing.T, rt http.RoundTripper, srv *fakeServer) {
	t.Helper()
	srv.set("m", 503)
	for range breaker.DefaultConsecutiveFailures {
		_, _ = send(t, rt, chat(t, "m"))
	}
	_, err := send(t, rt, chat(t, "m"))
	require.ErrorIs(t, err, gobreaker.ErrOpenState)
	time.Sleep(breaker.DefaultTimeout)
	srv.set("m", 200)
}

// A half-open breaker whose probes hang (a base transport with no
// deadline, a server that takes the request and never answers) refused
// every other request to its model as "its probes are out" for as long as
// they hung: for ever, with no deadline. A probe that has not answered
// within the probe wait no longer holds its place.
func TestAHungProbeDoesNotHoldItsBreakerHalfOpenForever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &hangingBase{srv: newFakeServer()}
		rt := breaker.New()(base)
		tripAndWait(t, rt, base.srv)

		base.hang.Store(true)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer base.releaseAll(200)
		for range breaker.DefaultHalfOpenProbes {
			wg.Go(func() {
				status, err := send(t, rt, chat(t, "m"))
				assert.NoError(t, err, "a hung probe still gets its answer")
				assert.Equal(t, 200, status)
			})
		}
		synctest.Wait()
		base.hang.Store(false)
		require.Equal(t, breaker.DefaultHalfOpenProbes, base.holding(), "every probe hangs")
		_, err := send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrTooManyRequests, "the probes are out")

		time.Sleep(time.Hour)
		for i := range breaker.DefaultHalfOpenProbes + 10 {
			status, err := send(t, rt, chat(t, "m"))
			require.NoError(t, err, "request %d, an hour after the probes were sent", i)
			assert.Equal(t, 200, status)
		}
		assert.Equal(t, breaker.DefaultConsecutiveFailures+breaker.DefaultHalfOpenProbes+10, base.srv.count("m"),
			"new probes, then requests of a closed breaker")

	})
}

// The probe wait, to the nanosecond: a hung probe holds the other
// requests back until it has been out for the wait, and one goes in its
// place then. The hung probe's answer still counts when it comes: a
// failure opens the breaker again, as any probe's does.
func TestAHungProbeGivesWayAfterTheProbeWaitAndItsLateFailureStillCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const wait = 10 * time.Second
		base := &hangingBase{srv: newFakeServer()}
		rt := breaker.New(breaker.WithHalfOpenProbes(2), breaker.WithProbeWait(wait))(base)
		tripAndWait(t, rt, base.srv)

		var wg sync.WaitGroup
		defer wg.Wait()
		defer base.releaseAll(200)
		hung := func(want int) {
			base.hang.Store(true)
			wg.Go(func() {
				status, err := send(t, rt, chat(t, "m"))
				assert.NoError(t, err)
				assert.Equal(t, want, status)
			})
			synctest.Wait()
			base.hang.Store(false)
		}
		hung(503) // the first probe hangs
		status, err := send(t, rt, chat(t, "m"))
		require.NoError(t, err, "the second probe")
		require.Equal(t, 200, status)
		_, err = send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrTooManyRequests, "both probes counted")

		time.Sleep(wait - time.Nanosecond)
		_, err = send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrTooManyRequests, "held back for the probe wait")
		time.Sleep(time.Nanosecond)
		hung(200) // sent in the hung probe's place, and hangs too
		require.Equal(t, 2, base.holding(), "a probe went in the place of the one out for the wait")

		base.release(0, 503)
		synctest.Wait()
		_, err = send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrOpenState, "the late failure opened the breaker again")

		base.release(1, 200) // told nothing: the breaker has left that half-open phase
		synctest.Wait()
		_, err = send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrOpenState, "still open")
		time.Sleep(breaker.DefaultTimeout)
		for range 2 + 5 {
			status, err = send(t, rt, chat(t, "m"))
			require.NoError(t, err, "probes, then requests of a closed breaker")
			assert.Equal(t, 200, status)
		}
		assert.Equal(t, breaker.DefaultConsecutiveFailures+1+2+5, base.srv.count("m"))
	})
}

// A probe out for the wait whose caller then gives up is not counted out
// twice: it gave its place once, and the breaker lets no more probes
// through than it counts.
func TestAProbeGivenUpOnThenCancelledFreesOnePlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &hangingBase{srv: newFakeServer()}
		rt := breaker.New(breaker.WithHalfOpenProbes(1))(base)
		tripAndWait(t, rt, base.srv)

		ctx, cancel := context.WithCancel(context.Background())
		base.hang.Store(true)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer base.releaseAll(200)
		wg.Go(func() {
			_, _ = send(t, rt, chat(t, "m").WithContext(ctx))
		})
		synctest.Wait()
		time.Sleep(breaker.DefaultProbeWait)
		wg.Go(func() { // in the first probe's place, and hangs too
			status, err := send(t, rt, chat(t, "m"))
			assert.NoError(t, err)
			assert.Equal(t, 200, status)
		})
		synctest.Wait()
		base.hang.Store(false)
		require.Equal(t, 2, base.holding())

		cancel()
		base.release(0, 200) // its caller gone: excluded, as it was already
		synctest.Wait()
		_, err := send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, gobreaker.ErrTooManyRequests, "one probe out, in one place")
	})
}
