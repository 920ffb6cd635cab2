package breaker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func answer(status int) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return &http.Response{StatusCode: status, Body: http.NoBody}, nil
	})
}

func request(t *testing.T, model string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`"}`))
	require.NoError(t, err)
	return req
}

func roundTrip(t *testing.T, rt http.RoundTripper, model string) error {
	t.Helper()
	resp, err := rt.RoundTrip(request(t, model))
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return err
}

func keys(rt http.RoundTripper) int {
	b := rt.(*roundTripper)
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

func TestIdleBreakersAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New()(answer(200))
		for i := range 100 {
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("model-%d", i)))
		}
		require.Equal(t, 100, keys(rt))
		// model-0 stays busy; the 99 others are idle from now on.
		for minute := 1; minute <= 20; minute++ {
			time.Sleep(time.Minute)
			for range 16 {
				require.NoError(t, roundTrip(t, rt, "model-0"))
			}
			if time.Duration(minute)*time.Minute < DefaultIdleTTL {
				require.Equal(t, 100, keys(rt), "none dropped before IdleTTL (minute %d)", minute)
			}
		}
		assert.Equal(t, 1, keys(rt), "only the breaker in use is left")
	})
}

// The sweep runs at the first answer once it is due, and drops what was
// told no outcome for IdleTTL: a breaker made or used within IdleTTL stays.
func TestASweepRunsAtTheFirstAnswerOnceDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = time.Minute
		rt := New(WithIdleTTL(ttl))(answer(200))
		require.NoError(t, roundTrip(t, rt, "idle"))
		time.Sleep(ttl / 2)
		require.NoError(t, roundTrip(t, rt, "recent"))
		require.Equal(t, 2, keys(rt), "a sweep at ttl/2 drops nothing idle for less than ttl")
		time.Sleep(ttl / 2)
		require.Equal(t, 2, keys(rt), "no answer, no sweep")
		require.NoError(t, roundTrip(t, rt, "recent"))
		b := rt.(*roundTripper)
		b.mu.Lock()
		assert.NotContains(t, b.entries, "api.together.xyz idle", "idle for ttl: dropped at the first answer")
		assert.Contains(t, b.entries, "api.together.xyz recent")
		b.mu.Unlock()
	})
}

// A request whose outcome says nothing of the model (the caller's
// cancellation) still uses its breaker: one that gets only those is not
// idle.
func TestAnExcludedOutcomeIsAUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			if m, _, _ := transport.RequestModel(req, 0); m == "cancelled" {
				return nil, context.Canceled
			}
			return answer(200).RoundTrip(req)
		})
		rt := New()(inner)
		b := rt.(*roundTripper)
		var first *entry
		for minute := 1; minute <= 20; minute++ {
			require.ErrorIs(t, roundTrip(t, rt, "cancelled"), context.Canceled)
			b.mu.Lock()
			e := b.entries["api.together.xyz cancelled"]
			b.mu.Unlock()
			if first == nil {
				first = e
			}
			require.Same(t, first, e, "the same breaker, kept (minute %d)", minute)
			require.NoError(t, roundTrip(t, rt, "busy"))
			time.Sleep(time.Minute)
		}
	})
}

func TestOpenBreakersOutliveIdleness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := answer(503)
		up := answer(200)
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			if m, _, _ := transport.RequestModel(req, 0); m == "down" {
				return down.RoundTrip(req)
			}
			return up.RoundTrip(req)
		})
		rt := New(WithTimeout(time.Hour), WithIdleTTL(time.Minute))(inner)
		for range 5 {
			require.NoError(t, roundTrip(t, rt, "down"))
		}
		require.NoError(t, roundTrip(t, rt, "idle"))
		require.Equal(t, 2, keys(rt))
		for range 3 { // sweeps run, as other traffic flows
			time.Sleep(time.Minute)
			for range 16 {
				require.NoError(t, roundTrip(t, rt, "busy"))
			}
		}
		b := rt.(*roundTripper)
		b.mu.Lock()
		assert.NotContains(t, b.entries, "api.together.xyz idle", "the idle closed breaker is dropped")
		assert.Contains(t, b.entries, "api.together.xyz down", "the idle open one is kept")
		b.mu.Unlock()
		require.ErrorIs(t, roundTrip(t, rt, "down"), ErrOpen, "an open breaker is not forgotten")
	})
}

func TestMaxKeysBoundsTheMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New(WithMaxKeys(10))(answer(200))
		for i := range 1000 {
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("model-%d", i)))
			require.LessOrEqual(t, keys(rt), 10)
			time.Sleep(time.Millisecond)
		}
		b := rt.(*roundTripper)
		b.mu.Lock()
		defer b.mu.Unlock()
		assert.Contains(t, b.entries, "api.together.xyz model-999", "the least recently used give way")
		assert.NotContains(t, b.entries, "api.together.xyz model-0")
	})
}

// An open breaker never gives way to a new key: 1,100 other models passing
// through a full map do not bring traffic back to a model that is down.
func TestAnOpenBreakerIsNotEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := answer(503)
		up := answer(200)
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			if m, _, _ := transport.RequestModel(req, 0); m == "down" {
				return down.RoundTrip(req)
			}
			return up.RoundTrip(req)
		})
		rt := New(WithTimeout(time.Hour))(inner)
		for range DefaultConsecutiveFailures {
			require.NoError(t, roundTrip(t, rt, "down"))
		}
		require.ErrorIs(t, roundTrip(t, rt, "down"), ErrOpen)
		for i := range 1100 {
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("model-%d", i)))
			require.LessOrEqual(t, keys(rt), DefaultMaxKeys)
		}
		require.ErrorIs(t, roundTrip(t, rt, "down"), ErrOpen, "still open after 1,100 other models")
	})
}

// When every breaker kept is open, a new key shares the overflow breaker
// rather than growing the map or evicting one.
func TestKeysPastAFullMapOfOpenBreakersShareOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New(WithMaxKeys(3), WithTimeout(time.Hour))(answer(503))
		for _, m := range []string{"a", "b", "c"} {
			for range DefaultConsecutiveFailures {
				require.NoError(t, roundTrip(t, rt, m))
			}
			require.ErrorIs(t, roundTrip(t, rt, m), ErrOpen)
		}
		require.NoError(t, roundTrip(t, rt, "d"), "d gets a breaker: the overflow one")
		assert.Equal(t, 3, keys(rt))
		for _, m := range []string{"a", "b", "c"} {
			require.ErrorIs(t, roundTrip(t, rt, m), ErrOpen)
		}
	})
}

// Model names are bounded in the keys kept: 1,100 models of 64 KiB each
// leave keys of at most a few hundred bytes, each still its own breaker.
func TestLongModelNamesAreBoundedInTheKeys(t *testing.T) {
	rt := New()(answer(200))
	long := strings.Repeat("x", 64<<10)
	for i := range 1100 {
		require.NoError(t, roundTrip(t, rt, fmt.Sprintf("%d-%s", i, long)))
	}
	b := rt.(*roundTripper)
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.Len(t, b.entries, DefaultMaxKeys)
	total := 0
	for k, e := range b.entries {
		require.LessOrEqual(t, len(k), transport.MaxKeyLen, "key %.80q", k)
		require.Equal(t, k, e.key)
		total += len(k)
	}
	assert.Less(t, total, DefaultMaxKeys*transport.MaxKeyLen)
}

// TestADroppedBreakerIsNotFoundAgain holds the lock-free lookup of the last
// key to what the map holds: a breaker dropped as idle (here with nothing
// but this key's requests between, so that it is still the last one looked
// up) is made anew, its counts gone, rather than found again.
func TestADroppedBreakerIsNotFoundAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New()(answer(200))
		b := rt.(*roundTripper)
		first := b.entry(request(t, "m"), "m")
		require.Same(t, first, b.entry(request(t, "m"), "m"), "found again while kept")
		// Two sweeps IdleTTL apart with no request between drop it.
		for range 2 {
			time.Sleep(DefaultIdleTTL)
			b.mu.Lock()
			b.sweep(b.now())
			b.mu.Unlock()
		}
		require.Equal(t, 0, keys(rt))
		again := b.entry(request(t, "m"), "m")
		assert.NotSame(t, first, again, "a dropped breaker is not found through the last key")
		assert.Equal(t, 1, keys(rt))
	})
}

// A breaker whose requests are refused while it is open is in use, however
// long it stays open: when its open period ends, its model gets the
// half-open probes, not a new closed breaker that lets every request
// through.
func TestABreakerRefusingRequestsIsNotIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			if m, _, _ := transport.RequestModel(req, 0); m == "down" {
				calls++
				return answer(503).RoundTrip(req)
			}
			return answer(200).RoundTrip(req)
		})
		rt := New(WithTimeout(2*time.Minute), WithIdleTTL(time.Minute))(inner)
		for range 5 {
			require.NoError(t, roundTrip(t, rt, "down"))
		}
		require.Equal(t, 5, calls)
		for range 120 { // the model's callers keep calling; other traffic flows
			time.Sleep(time.Second)
			require.NoError(t, roundTrip(t, rt, "busy"))
			if err := roundTrip(t, rt, "down"); err != nil {
				require.ErrorIs(t, err, ErrOpen)
			}
		}
		for range 10 {
			_ = roundTrip(t, rt, "down")
		}
		assert.Equal(t, 6, calls, "one probe, which fails and opens the breaker again")
	})
}
