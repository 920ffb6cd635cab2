package retry_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// send makes one request through rt against an always-failing script and
// returns how many attempts it took.
func send(t *testing.T, rt http.RoundTripper, inner *script) int {
	t.Helper()
	before := inner.attempts()
	resp, err := rt.RoundTrip(newRequest(t, t.Context()))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode, "a spent budget returns the last response")
	resp.Body.Close()
	return inner.attempts() - before
}

func TestRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		p := []retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(retry.DefaultBudget, 1)} // floor: 10 retries per 10 s
		rt := wrap(p, inner)

		// A lone request may use the floor: 10 retries.
		assert.Equal(t, 11, send(t, rt, inner))
		// Until 20% of the requests exceeds the floor, nobody else retries.
		for i := 2; i <= 50; i++ {
			require.Equal(t, 1, send(t, rt, inner), "request %d", i)
		}
		// Then one retry per five requests: 20%.
		for i := 51; i <= 100; i++ {
			want := 1
			if i%5 == 0 {
				want = 2
			}
			require.Equal(t, want, send(t, rt, inner), "request %d", i)
		}
		assert.Equal(t, 120, inner.attempts(), "100 requests, 20 retries")

		// The window slides: just before ten seconds, the budget is still spent.
		time.Sleep(10*time.Second - time.Nanosecond)
		assert.Equal(t, 1, send(t, rt, inner))
		// Then the first second's counts drop out, and the floor is back.
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 11, send(t, rt, inner))
	})
}

func TestRetryBudgetIsPerNewCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := []retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(retry.DefaultBudget, 1)}
		mw := retry.New(p...)
		a, b := play(step{status: 503}), play(step{status: 503})
		assert.Equal(t, 11, send(t, mw(a), a))
		assert.Equal(t, 1, send(t, mw(b), b), "same New: shared budget")
		c := play(step{status: 503})
		assert.Equal(t, 11, send(t, retry.New(p...)(c), c), "another New: its own budget")
	})
}

func TestRetryBudgetOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   []retry.Option
		attempts int
	}{
		{"default floor: 100 retries per window", []retry.Option{}, 101},
		{"no floor: a lone request cannot retry", []retry.Option{retry.WithBudget(retry.DefaultBudget, 0)}, 1},
		{"budget disabled", []retry.Option{retry.WithoutBudget()}, 301},
		{"a higher ratio still keeps the floor", []retry.Option{retry.WithBudget(5, 2)}, 21},
		{"a ratio that is no number keeps the default", []retry.Option{retry.WithBudget(math.NaN(), 0)}, 1},
		{"a floor that is no number keeps the default", []retry.Option{retry.WithBudget(retry.DefaultBudget, math.NaN())}, 101},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: 503})
				p := append([]retry.Option{retry.WithMaxRetries(300), retry.WithRand(zeroRand)}, tc.policy...)
				assert.Equal(t, tc.attempts, send(t, wrap(p, inner), inner))
			})
		})
	}
}

func TestRetryBudgetUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		p := []retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(retry.DefaultBudget, 2)} // 20 retries per window
		rt := wrap(p, inner)
		const n = 40
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { send(t, rt, inner) })
		}
		wg.Wait()
		retries := inner.attempts() - n
		assert.GreaterOrEqual(t, retries, 20, "the floor is available")
		assert.LessOrEqual(t, retries, 20+n, "overshoot bounded by the racing requests")
	})
}

// gate stands for a decorator under the retry decorator that refuses some
// requests before sending them: a call (counted from 0) that refuse picks
// fails with err, by default bucket.ErrTooLong marked transport.NotSent as
// a limiter refuses a wait too long, and its body is closed unsent; the
// others go on to next.
type gate struct {
	next   http.RoundTripper
	refuse func(call int) bool
	err    error

	mu    sync.Mutex
	calls int
}

func (g *gate) RoundTrip(req *http.Request) (*http.Response, error) {
	g.mu.Lock()
	call := g.calls
	g.calls++
	g.mu.Unlock()
	if g.refuse(call) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		if g.err != nil {
			return nil, g.err
		}
		return nil, transport.NotSent(bucket.ErrTooLong)
	}
	return g.next.RoundTrip(req)
}

// sendAll sends n requests through rt, each answered 503 or refused
// before it was sent, and returns how many of their attempts inner saw.
func sendAll(t *testing.T, rt http.RoundTripper, inner *script, n int, model string) int {
	t.Helper()
	before := inner.attempts()
	for range n {
		resp, err := rt.RoundTrip(newRequestModel(t, model))
		if err == nil {
			assert.Equal(t, 503, resp.StatusCode)
			resp.Body.Close()
		}
	}
	return inner.attempts() - before
}

func TestRefusedRequestsDoNotRaiseTheRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		// The first 50 requests are refused before they are sent; then
		// the server answers 503 to every attempt.
		g := &gate{next: inner, refuse: func(call int) bool { return call < 50 }}
		rt := wrap([]retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(retry.DefaultBudget, 0)}, g)
		for i := range 50 {
			_, err := rt.RoundTrip(newRequest(t, t.Context()))
			require.ErrorIs(t, err, transport.ErrNotSent, "request %d", i)
			require.ErrorIs(t, err, bucket.ErrTooLong, "request %d", i)
		}
		require.Zero(t, inner.attempts(), "nothing was sent")
		// Five requests reach the server: 20% of them is one retry.
		assert.Equal(t, 5+1, sendAll(t, rt, inner, 5, "m"), "five requests sent and one retry")
	})
}

func TestRequestsAnOpenBreakerRefusedDoNotRaiseTheRetryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		// One breaker per model, under the retry decorator as in the
		// presets: model a's opens on its third 503 in a row.
		br := breaker.New(breaker.WithConsecutiveFailures(3))(inner)
		rt := wrap([]retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(retry.DefaultBudget, 0)}, br)
		require.Equal(t, 3, sendAll(t, rt, inner, 3, "a"), "three requests, 0.6 of a retry: none")
		for i := range 50 {
			_, err := rt.RoundTrip(newRequestModel(t, "a"))
			require.ErrorIs(t, err, breaker.ErrOpen, "request %d", i)
		}
		// Four requests were sent: 0.8 of a retry, none for model b.
		assert.Equal(t, 1, sendAll(t, rt, inner, 1, "b"), "model b's request is not retried")
	})
}

func TestARetryRefusedBeforeSendingDoesNotSpendTheRetryBudget(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error // the refusal
		is   error // what it matches
	}{
		{"by a limiter", transport.NotSent(bucket.ErrTooLong), transport.ErrNotSent},
		{"by an open breaker", &breaker.OpenError{Key: "api.example.com m"}, breaker.ErrOpen},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: 503})
				// The retries of the first ten requests (calls 1, 3, ... 19)
				// are refused before they are sent.
				g := &gate{next: inner, err: tc.err, refuse: func(call int) bool { return call < 20 && call%2 == 1 }}
				// No ratio: the floor, 10 retries per window, is the budget.
				rt := wrap([]retry.Option{retry.WithMaxRetries(1), retry.WithRand(zeroRand), retry.WithBudget(0, 1)}, g)
				for i := range 10 {
					_, err := rt.RoundTrip(newRequest(t, t.Context()))
					require.ErrorIs(t, err, tc.is, "request %d", i)
					var re *retry.Error
					require.ErrorAs(t, err, &re)
					require.Equal(t, 2, re.Attempts, "request %d: its retry was made, and refused", i)
				}
				require.Equal(t, 10, inner.attempts(), "the retries were not sent")
				// The refused retries sent nothing: the floor is still whole.
				assert.Equal(t, 2, send(t, rt, inner), "the next request's retry is made")
				for i := range 9 {
					require.Equal(t, 2, send(t, rt, inner), "request %d", 12+i)
				}
				assert.Equal(t, 1, send(t, rt, inner), "the eleventh retry sent is over the floor")
			})
		})
	}
}

func TestARetryRefusedAfterItsSecondLeftTheWindowGivesNothingBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		// The first request's retry, counted in the budget's first second,
		// waits 10.5 s under the decorator and is then refused: by then
		// that second has left the window, and its slot counts another.
		g := &gate{next: inner, refuse: func(call int) bool {
			if call == 1 {
				time.Sleep(10*time.Second + 500*time.Millisecond)
				return true
			}
			return false
		}}
		rt := wrap([]retry.Option{retry.WithMaxRetries(1), retry.WithRand(zeroRand), retry.WithBudget(0, 1)}, g)
		var wg sync.WaitGroup
		wg.Go(func() {
			_, err := rt.RoundTrip(newRequest(t, t.Context()))
			assert.ErrorIs(t, err, transport.ErrNotSent)
		})
		time.Sleep(10*time.Second + 200*time.Millisecond)
		for i := range 10 {
			require.Equal(t, 2, send(t, rt, inner), "request %d: the floor is whole again", i)
		}
		wg.Wait()
		assert.Equal(t, 1, send(t, rt, inner), "the floor's ten retries of this second still count")
	})
}

func newRequestModel(t *testing.T, model string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, chatURL, strings.NewReader(`{"model":"`+model+`"}`))
	require.NoError(t, err)
	return req
}

func TestARetryNeverSentForWantOfItsBodyGivesItsBudgetPlaceBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		p := []retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(0, 1)} // 10 retries per 10 s
		rt := wrap(p, inner)
		for range 10 {
			req := newRequest(t, t.Context())
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
		}
		assert.Equal(t, 10, inner.attempts(), "no retry was sent")
		assert.Equal(t, 11, send(t, rt, inner), "the floor is untouched")
	})
}

func TestARetryWhoseWaitIsCancelledGivesItsBudgetPlaceBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		var cancel context.CancelFunc = func() {}
		p := []retry.Option{retry.WithMaxRetries(1000), retry.WithRand(zeroRand), retry.WithBudget(0, 1),
			retry.WithEvents(func(e transport.Event) {
				if e.Kind == transport.EventRetry {
					cancel() // the context ends as the wait begins
				}
			})}
		rt := wrap(p, inner)
		for range 10 {
			var ctx context.Context
			ctx, cancel = context.WithCancel(t.Context())
			_, err := rt.RoundTrip(newRequest(t, ctx))
			require.ErrorIs(t, err, context.Canceled)
		}
		cancel = func() {}
		assert.Equal(t, 10, inner.attempts(), "no retry was sent")
		assert.Equal(t, 11, send(t, rt, inner), "the floor is untouched")
	})
}
