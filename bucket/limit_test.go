package bucket_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// script is a server that answers each request with what answer says, and
// records when each request arrived.
type script struct {
	mu     sync.Mutex
	start  time.Time
	times  []time.Duration
	answer func(i int) (status int, header http.Header)
}

func newScript(answer func(i int) (int, http.Header)) *script {
	return &script{start: time.Now(), answer: answer}
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	s.mu.Lock()
	i := len(s.times)
	s.times = append(s.times, time.Since(s.start))
	s.mu.Unlock()
	status, h := s.answer(i)
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

func (s *script) arrivals() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.times...)
}

func ok(int) (int, http.Header) { return http.StatusOK, nil }

func get(t *testing.T, rt http.RoundTripper, ctx context.Context) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		transport.Drain(resp)
	}
	return resp, err
}

func TestLimitTakesTheCostBeforeEachAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		b := bucket.New(bucket.PerSecond(10), bucket.WithBurst(10), bucket.WithInitial(0))
		cost := func(r *http.Request) int { return 5 }
		rt := bucket.Limit(b, bucket.WithCost(cost))(srv)
		for range 3 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.Equal(t, []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond}, srv.arrivals())

		free := bucket.Limit(b, bucket.WithCost(func(*http.Request) int { return 0 }))(srv)
		_, err := get(t, free, context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1500*time.Millisecond, srv.arrivals()[3], "a cost of 0 waits for nothing")
	})
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestLimitRefusesAWaitPastTheDeadlineAndClosesTheBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		b := bucket.New(bucket.PerSecond(1))
		rt := bucket.Limit(b)(srv)
		_, err := get(t, rt, context.Background())
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		body := &closeTracker{Reader: strings.NewReader("{}")}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", body)
		require.NoError(t, err)
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.True(t, body.closed, "the RoundTripper contract: the body is closed")
		assert.Len(t, srv.arrivals(), 1, "nothing sent")
	})
}

func TestLimitPausesTheWholeBucketOnA429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			if i == 1 {
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"2.5"}}
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		for range 2 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.False(t, b.TryTake(1), "paused")
		// Three callers at once: all held until the reset, then paced.
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				_, err := get(t, rt, context.Background())
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		times := srv.arrivals()
		require.Len(t, times, 5)
		assert.Equal(t, 100*time.Millisecond, times[1])
		assert.Equal(t, 2600*time.Millisecond, times[2], "the first after the pause goes at the reset")
		assert.Greater(t, times[3], times[2], "the others are paced, not burst")
	})
}

func TestLimitDefaultPauseWhenThe429SaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			if i == 0 {
				return http.StatusTooManyRequests, nil
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b, bucket.WithPause(3*time.Second))(srv)
		for range 2 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.Equal(t, 3*time.Second, srv.arrivals()[1])
	})
}

func TestLimitCapsThePauseOfA429(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []bucket.LimitOption
		want time.Duration
	}{
		{"default cap", nil, bucket.DefaultMaxPause},
		{"configured cap", []bucket.LimitOption{bucket.WithMaxPause(5 * time.Second)}, 5 * time.Second},
		{"a longer cap", []bucket.LimitOption{bucket.WithMaxPause(time.Hour)}, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A Retry-After of 1e12 s is read as transport.MaxSignalDelay (24 h).
				srv := newScript(func(i int) (int, http.Header) {
					if i == 0 {
						return http.StatusTooManyRequests, http.Header{"Retry-After": {"1e12"}}
					}
					return http.StatusOK, nil
				})
				rt := bucket.Limit(bucket.New(bucket.PerSecond(10)), tc.opts...)(srv)
				_, err := get(t, rt, context.Background())
				require.NoError(t, err)
				_, err = get(t, rt, context.Background())
				require.NoError(t, err)
				assert.Equal(t, tc.want, srv.arrivals()[1])
			})
		})
	}
}

func TestLimitLowersTheRateOncePerPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Ten requests in flight at once; the server refuses them all.
		release := make(chan struct{})
		var once sync.Once
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			<-release
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"X-Ratelimit-Reset": {"1"}}, Body: http.NoBody}, nil
		})
		b := bucket.New(bucket.PerSecond(100), bucket.WithInitial(10))
		rt := bucket.Limit(b)(srv)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				resp, err := get(t, rt, context.Background())
				assert.NoError(t, err)
				assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			})
		}
		synctest.Wait()
		once.Do(func() { close(release) })
		wg.Wait()
		// Nothing measured yet: the rate is lowered to 0.7 of itself, a
		// guess held until the next 429 measures the limit, once for the
		// ten 429s of one burst.
		assert.InDelta(t, 70, b.Rate().PerSecond(), 1e-9)
	})
}

func TestLimitMeasuresTheServerAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A server that allows 5 a second, exactly: a token bucket of 1.
		var mu sync.Mutex
		level, last := 1.0, time.Now()
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			now := time.Now()
			level = min(1, level+5*now.Sub(last).Seconds())
			last = now
			if level < 1-1e-9 {
				reset := time.Duration((1 - level) / 5 * float64(time.Second))
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"X-Ratelimit-Reset": {transportSeconds(reset)}}, Body: http.NoBody}, nil
			}
			level--
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}, nil
		})
		b := bucket.New(bucket.PerSecond(50))
		rt := bucket.Limit(b)(srv)
		refused, passed := 0, 0
		start := time.Now()
		for passed < 1000 {
			resp, err := get(t, rt, context.Background())
			require.NoError(t, err)
			if resp.StatusCode == http.StatusTooManyRequests {
				refused++
			} else {
				passed++
			}
			assert.LessOrEqual(t, b.Rate().PerSecond(), 50.0, "never above the ceiling")
		}
		elapsed := time.Since(start)
		r := b.Rate().PerSecond()
		t.Logf("1000 requests in %v: rate %.3f/s, %d refused", elapsed, r, refused)
		assert.InDelta(t, 5, r, 1, "the rate settles at the server's")
		assert.Less(t, elapsed, 223*time.Second, "over 90% of the server's limit used: 1000 at 5/s take 200s")
		assert.LessOrEqual(t, refused, 20)
	})
}

func transportSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func TestLimitSlowStartsAnUnknownRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		b := bucket.New(bucket.Rate{})
		rt := bucket.Limit(b, bucket.WithCeiling(bucket.PerSecond(64)))(srv)
		start := time.Now()
		for time.Since(start) < 10*time.Second {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.InDelta(t, 64, b.Rate().PerSecond(), 1e-9, "doubled up to the ceiling")
		n := len(srv.arrivals())
		assert.Greater(t, n, 300)
	})
}

func TestLimitSpendsTheServerWindowExactly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []bucket.LimitOption
		refused int32
	}{
		// A minute's reset is longer than the default longest pause: the
		// window is obeyed for 30 s, and the 429 asked then says the rest.
		{"default longest pause", nil, 3},
		{"a minute's pause allowed", []bucket.LimitOption{bucket.WithMaxPause(time.Minute)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// Windows of 20 requests a minute, reported on every answer.
				var mu sync.Mutex
				window, used := 0, 0
				start := time.Now()
				srv := transport.Func(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					defer mu.Unlock()
					el := time.Since(start)
					if w := int(el / time.Minute); w != window {
						window, used = w, 0
					}
					reset := time.Minute - el%time.Minute
					h := http.Header{
						"X-Ratelimit-Limit": {"20"},
						"X-Ratelimit-Reset": {strconv.FormatFloat(reset.Seconds(), 'f', -1, 64)},
					}
					status := http.StatusOK
					if used < 20 {
						used++
					} else {
						status = http.StatusTooManyRequests
					}
					h.Set("X-Ratelimit-Remaining", strconv.Itoa(20-used))
					return &http.Response{StatusCode: status, Header: h, Body: http.NoBody}, nil
				})
				b := bucket.New(bucket.PerSecond(1)) // told far less than the window allows
				rt := bucket.Limit(b, tc.opts...)(srv)
				var wg sync.WaitGroup
				var refused atomic.Int32
				for range 8 {
					wg.Go(func() {
						for range 10 {
							resp, err := get(t, rt, context.Background())
							assert.NoError(t, err)
							if resp.StatusCode == http.StatusTooManyRequests {
								refused.Add(1)
							}
						}
					})
				}
				wg.Wait()
				assert.Equal(t, tc.refused, refused.Load(), "nothing sent beyond what the server said remains, but for one ask per pause cut short")
				// 80 requests in windows of 20: the last window starts at
				// 3 minutes, and is spent at once, not at the bucket's one
				// a second.
				assert.Less(t, time.Since(start), 3*time.Minute+5*time.Second)
			})
		})
	}
}

func TestLimitPassesTheResponseUntouched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeTracker{Reader: strings.NewReader("data: {}\n\n")}
		want := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: body}
		rt := bucket.Limit(bucket.New(bucket.PerSecond(1)))(transport.Func(func(*http.Request) (*http.Response, error) {
			return want, nil
		}))
		req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/models", nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Same(t, want, resp)
		rest, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "data: {}\n\n", string(rest), "nothing of the body was read")
	})
}

func TestLimitKeepsTheContractWhenNextReturnsBoth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeTracker{Reader: strings.NewReader("x")}
		boom := errors.New("boom")
		rt := bucket.Limit(bucket.New(bucket.PerSecond(1)))(transport.Func(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: body}, boom
		}))
		req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/models", nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, boom)
		assert.True(t, body.closed)
	})
}

func TestLimitCountsTextTokensAgainstTheTokenWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			return http.StatusOK, http.Header{
				"X-Ratelimit-Remaining":  {"100"},
				"X-Ratelimit-Reset":      {"10"},
				"X-Tokenlimit-Remaining": {"0"},
				"X-Tokenlimit-Reset":     {"10"},
			}
		})
		b := bucket.New(bucket.PerSecond(1000))
		rt := bucket.Limit(b, bucket.WithUnits(bucket.TextTokens), bucket.WithCost(func(*http.Request) int { return 100 }))(srv)
		start := time.Now()
		for range 2 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.Equal(t, 10*time.Second, time.Since(start), "no tokens of text remain until the reset")
	})
}

func TestLimitRaisesTheRateAfterAPauseUpToTheCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			if i == 0 {
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		_, err := get(t, rt, context.Background())
		require.NoError(t, err)
		lowered := b.Rate().PerSecond()
		require.Less(t, lowered, 10.0)
		var rates []float64
		start := time.Now()
		for time.Since(start) < 5*time.Minute {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
			r := b.Rate().PerSecond()
			if len(rates) > 0 {
				assert.GreaterOrEqual(t, r, rates[len(rates)-1], "answers only raise the rate")
			}
			assert.LessOrEqual(t, r, 10.0, "never above the ceiling: the rate the bucket was made with")
			rates = append(rates, r)
		}
		// Gently: the guess holds a moment, then the rate goes back to
		// just below the one refused, and climbs from there.
		assert.Equal(t, lowered, rates[0], "the guess held")
		for _, r := range rates {
			if r > lowered {
				assert.InDelta(t, 9.5, r, 0.05, "the first raise: just below the rate refused")
				break
			}
		}
		assert.InDelta(t, 10, rates[len(rates)-1], 1e-9, "back at the ceiling")
	})
}

func TestSlowStartEndsAtTheRateTheCountsName(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Windows of 100 requests each 10 s, counted on every answer: the
		// bucket spends each window and is never refused, so no 429 ends
		// its slow start.
		var mu sync.Mutex
		used, window, served := 0, 0, 0
		start := time.Now()
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			defer mu.Unlock()
			el := time.Since(start)
			if w := int(el / (10 * time.Second)); w != window {
				window, used = w, 0
			}
			status := http.StatusOK
			if used < 100 {
				used++
				served++
			} else {
				status = http.StatusTooManyRequests
			}
			reset := 10*time.Second - el%(10*time.Second)
			h := http.Header{
				"X-Ratelimit-Limit":     {"100"},
				"X-Ratelimit-Remaining": {strconv.Itoa(100 - used)},
				"X-Ratelimit-Reset":     {strconv.FormatFloat(reset.Seconds(), 'f', -1, 64)},
			}
			return &http.Response{StatusCode: status, Header: h, Body: http.NoBody}, nil
		})
		b := bucket.New(bucket.Rate{})
		rt := bucket.Limit(b)(srv)
		refused, top := 0, 0.0
		for time.Since(start) < 5*time.Minute {
			resp, err := get(t, rt, context.Background())
			require.NoError(t, err)
			if resp.StatusCode == http.StatusTooManyRequests {
				refused++
			}
			top = max(top, b.Rate().PerSecond())
		}
		assert.LessOrEqual(t, top, 10.0, "never above the rate the counts name: 100 in 10 s")
		assert.Zero(t, refused)
		assert.GreaterOrEqual(t, served, 3000, "every window spent: 30 of 100")
	})
}
