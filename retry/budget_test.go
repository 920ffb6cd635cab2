package retry_test

import (
	"math"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/retry"
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
