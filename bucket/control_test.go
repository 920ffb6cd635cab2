package bucket_test

import (
	"context"
	"math"
	"net/http"
	"strconv"
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

// refuseFirst is a server that answers its first n requests 429 with
// header h, and every later one 200 with nothing.
func refuseFirst(n int, h http.Header) func(int) (int, http.Header) {
	return func(i int) (int, http.Header) {
		if i < n {
			return http.StatusTooManyRequests, h.Clone()
		}
		return http.StatusOK, nil
	}
}

// send sends n requests through rt one after the other.
func send(t *testing.T, rt http.RoundTripper, n int) {
	t.Helper()
	for range n {
		_, err := get(t, rt, context.Background())
		require.NoError(t, err)
	}
}

// A 429 that names no wait pauses for the server's next token if it is a
// bucket: one token's time at the rate, within [50ms, DefaultPause]; the
// first 429, at the guess it lowers the rate to (0.7 of it), the best there
// is of the server's token.
func TestABlindPauseIsOneTokenAtTheGuess(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		pause time.Duration
	}{
		{"a seventh of a second at 10/s, guessed 7/s", 10, time.Second / 7},
		{"five sevenths of a second at 2/s, guessed 1.4/s", 2, time.Second * 5 / 7},
		{"no shorter than 50ms at 100/s", 100, 50 * time.Millisecond},
		{"no longer than DefaultPause at 0.5/s", 0.5, bucket.DefaultPause},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScript(refuseFirst(1, nil))
				rt := bucket.Limit(bucket.New(bucket.PerSecond(tc.rate)))(srv)
				send(t, rt, 2)
				assert.Equal(t, []time.Duration{0, tc.pause}, srv.arrivals())
			})
		})
	}
}

// Each resumption refused at once, before anything was accepted, doubles
// the pause of a 429 that names no wait, so that a window that says
// nothing is waited out in a few steps; an acceptance starts again from
// one token's time.
func TestABlindPauseDoublesForEachResumptionRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// At 100/s (70/s once the first 429 lowers it) a token's time is
		// below 50ms: every undoubled blind pause is 50ms.
		const p = 50 * time.Millisecond
		srv := newScript(func(i int) (int, http.Header) {
			if i < 4 || i == 5 {
				return http.StatusTooManyRequests, nil
			}
			return http.StatusOK, nil
		})
		rt := bucket.Limit(bucket.New(bucket.PerSecond(100)))(srv)
		send(t, rt, 7)
		times := srv.arrivals()
		require.Len(t, times, 7)
		assert.Equal(t, []time.Duration{0, p, 3 * p, 7 * p, 15 * p}, times[:5],
			"paused 50ms, then 100ms, 200ms, 400ms as each resumption is refused")
		assert.Equal(t, p, times[6]-times[5], "accepted in between: back to one token's time")
	})
}

// quotaServer accepts its first quota requests, each answered after
// latency, and refuses every later one at once, naming nothing, until
// reopen since its start; from then on it accepts every request at once.
// It keeps the arrival times of the requests it refused.
type quotaServer struct {
	quota   int
	latency time.Duration
	reopen  time.Duration

	mu       sync.Mutex
	start    time.Time
	accepted int
	refused  []time.Duration
}

func (s *quotaServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	s.mu.Lock()
	el := time.Since(s.start)
	status, wait := http.StatusOK, time.Duration(0)
	switch {
	case el >= s.reopen:
	case s.accepted < s.quota:
		s.accepted++
		wait = s.latency
	default:
		status = http.StatusTooManyRequests
		s.refused = append(s.refused, el)
	}
	s.mu.Unlock()
	time.Sleep(wait)
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
}

// The requests in flight when a pause began were sent before it: their
// answers, accepted or not, say nothing of the server since. A resumption
// refused at once with nothing sent since accepted or out doubles the
// pause of a 429 that names no wait, however many of the older requests
// are still out, and their acceptances do not undo the doublings: a window
// that says nothing is waited out in as few 429s with callers in flight as
// with one caller.
func TestABlindPauseDoublesWhileOlderRequestsAreInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 32 callers at 100/s, answered in 300ms: the 21st request, at
		// 200ms, is refused with the 20 before it still in flight, and
		// their answers come back from 300ms to 490ms.
		srv := &quotaServer{quota: 20, latency: 300 * time.Millisecond, reopen: 2 * time.Second, start: time.Now()}
		rt := bucket.Limit(bucket.New(bucket.PerSecond(100)))(srv)
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(40)
		for range 32 {
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					_, err := get(t, rt, context.Background())
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		ms := time.Millisecond
		srv.mu.Lock()
		defer srv.mu.Unlock()
		assert.Equal(t, []time.Duration{200 * ms, 250 * ms, 350 * ms, 550 * ms, 950 * ms, 1750 * ms}, srv.refused,
			"paused 50ms, then 100ms, 200ms, 400ms, 800ms, each resumption refused at once")
	})
}

func TestWithPauseReplacesTheBlindPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(refuseFirst(2, nil))
		rt := bucket.Limit(bucket.New(bucket.PerSecond(100)), bucket.WithPause(300*time.Millisecond))(srv)
		send(t, rt, 3)
		assert.Equal(t, []time.Duration{0, 300 * time.Millisecond, 900 * time.Millisecond}, srv.arrivals(),
			"300ms, doubled when the resumption is refused")
	})
}

func TestWithMaxPauseCapsTheBlindPause(t *testing.T) {
	t.Run("one token's time", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := newScript(refuseFirst(1, nil))
			rt := bucket.Limit(bucket.New(bucket.PerSecond(10)), bucket.WithMaxPause(30*time.Millisecond))(srv)
			send(t, rt, 2)
			assert.Equal(t, []time.Duration{0, 30 * time.Millisecond}, srv.arrivals(), "100ms capped")
		})
	})
	t.Run("the doublings", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := newScript(refuseFirst(4, nil))
			rt := bucket.Limit(bucket.New(bucket.PerSecond(10)),
				bucket.WithPause(2*time.Second), bucket.WithMaxPause(5*time.Second))(srv)
			send(t, rt, 5)
			s := time.Second
			assert.Equal(t, []time.Duration{0, 2 * s, 6 * s, 11 * s, 16 * s}, srv.arrivals(),
				"paused 2s, 4s, then 8s and 16s capped at 5s")
		})
	})
	t.Run("doublings past a time.Duration", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// 48h doubled 16 times is past the longest time.Duration: the
			// pause is the cap, not a negative one (none at all).
			srv := newScript(refuseFirst(18, nil))
			rt := bucket.Limit(bucket.New(bucket.PerSecond(10)),
				bucket.WithPause(48*time.Hour), bucket.WithMaxPause(10000*time.Hour))(srv)
			send(t, rt, 19)
			at := srv.arrivals()
			require.Len(t, at, 19)
			assert.Equal(t, 10000*time.Hour, at[18]-at[17], "the eighteenth pause")
		})
	})
}

// counts is a header of the server's request window; an empty value is
// left out.
func counts(limit, remaining, reset string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"X-Ratelimit-Limit": limit, "X-Ratelimit-Remaining": remaining, "X-Ratelimit-Reset": reset,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// A count of what remains above the window's own limit is read as the
// limit: a server does not allow more than it says it allows.
func TestARemainingAboveItsLimitIsReadAsTheLimit(t *testing.T) {
	run := func(remaining string) []time.Duration {
		var times []time.Duration
		synctest.Test(t, func(t *testing.T) {
			// The first answer says 3 are allowed in a window of 10s;
			// the others say nothing.
			srv := newScript(func(i int) (int, http.Header) {
				if i == 0 {
					return http.StatusOK, counts("3", remaining, "10")
				}
				return http.StatusOK, nil
			})
			rt := bucket.Limit(bucket.New(bucket.PerSecond(1)))(srv)
			send(t, rt, 5)
			times = srv.arrivals()
		})
		return times
	}
	atLimit, above := run("3"), run("50")
	require.Len(t, atLimit, 5)
	assert.Equal(t, []time.Duration{0, 0, 0, 0}, atLimit[:4], "the window spent at once")
	assert.GreaterOrEqual(t, atLimit[4], 10*time.Second, "and nothing more until its reset")
	assert.Equal(t, atLimit, above, "a remaining of 50 in a limit of 3 is 3")
}

// A limit below one unit allows no request at all: it is no limit the
// server keeps (a limit of 0 for an unlimited key), and its count is
// ignored.
func TestALimitBelowOneUnitIsNoLimit(t *testing.T) {
	for _, tc := range []struct {
		name  string
		limit string
		want  []time.Duration
	}{
		{"a limit of 0", "0", []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}},
		{"a limit of half a request", "0.5", []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}},
		// The same count with a limit of one is obeyed: nothing remains
		// until each reset.
		{"a limit of 1", "1", []time.Duration{0, 10 * time.Second, 20 * time.Second}},
		{"no limit sent", "", []time.Duration{0, 10 * time.Second, 20 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScript(func(int) (int, http.Header) { return http.StatusOK, counts(tc.limit, "0", "10") })
				rt := bucket.Limit(bucket.New(bucket.PerSecond(10)))(srv)
				send(t, rt, 3)
				assert.Equal(t, tc.want, srv.arrivals())
			})
		})
	}
}

// A count whose reset is further than the longest pause is obeyed that
// long; the request sent then is refused, and its 429 pauses again, as
// long: no answer holds the key for longer than the longest pause.
func TestAResetBeyondTheLongestPauseIsObeyedThatLong(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []bucket.LimitOption
		want []time.Duration
	}{
		{"default longest pause", nil, []time.Duration{0, 30 * time.Second, 60 * time.Second}},
		{"a longest pause of 10s", []bucket.LimitOption{bucket.WithMaxPause(10 * time.Second)},
			[]time.Duration{0, 10 * time.Second, 20 * time.Second}},
		{"a longest pause beyond the window", []bucket.LimitOption{bucket.WithMaxPause(2 * time.Hour)},
			[]time.Duration{0, time.Hour, 2 * time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// One request an hour, in windows on the clock, counted
				// on every answer.
				start := time.Now()
				window, used := time.Duration(0), 0
				srv := newScript(func(int) (int, http.Header) {
					el := time.Since(start)
					if w := el.Truncate(time.Hour); w != window {
						window, used = w, 0
					}
					h := counts("1", "0", strconv.FormatFloat((window+time.Hour-el).Seconds(), 'f', -1, 64))
					if used == 1 {
						return http.StatusTooManyRequests, h
					}
					used++
					return http.StatusOK, h
				})
				rt := bucket.Limit(bucket.New(bucket.PerSecond(10)), tc.opts...)(srv)
				send(t, rt, 3)
				assert.Equal(t, tc.want, srv.arrivals())
			})
		})
	}
}

// A 429 that came while the count said something remained shows that
// another limit binds: the counts are ignored for ten minutes, then
// trusted again.
func TestCountsAreDistrustedForTenMinutesAfterA429TheyDidNotForesee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			if i == 0 {
				h := counts("10", "5", "1")
				h.Set("Retry-After", "1")
				return http.StatusTooManyRequests, h
			}
			// Nothing remains for 20s: obeyed, this stops the key.
			return http.StatusOK, counts("", "0", "20")
		})
		// The rate held at 10/s, so that only the counts move the times.
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b, bucket.WithFloor(bucket.PerSecond(10)))(srv)
		start := time.Now()
		send(t, rt, 3)
		sendAt(t, rt, start, 10*time.Minute-time.Second)
		send(t, rt, 1)
		sendAt(t, rt, start, 10*time.Minute)
		send(t, rt, 1)
		s := time.Second
		assert.Equal(t, []time.Duration{
			0, s, s + 100*time.Millisecond, // the pause of the 429, then paced: the counts are ignored
			599 * s, 599 * s, // still ignored a second before ten minutes
			600 * s, 620 * s, // trusted again: nothing remains for 20s
		}, srv.arrivals())
	})
}

// countingServer allows limit requests a second and counts them on every
// answer, which takes latency: in windows of a second on its clock
// (window), or as a bucket of limit tokens refilled at limit a second
// whose reset is the time until it is full again.
type countingServer struct {
	window  bool
	limit   float64
	latency time.Duration

	mu       sync.Mutex
	start    time.Time
	level    float64 // what remains: of the window, or in the bucket
	last     time.Time
	statuses []int
	times    []time.Duration
}

func newCountingServer(window bool, limit float64, latency time.Duration) *countingServer {
	return &countingServer{window: window, limit: limit, latency: latency, start: time.Now(), level: limit, last: time.Now()}
}

// RoundTrip answers req as the limit allows, after the latency.
func (s *countingServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	s.mu.Lock()
	now := time.Now()
	el := now.Sub(s.start)
	var reset time.Duration
	if s.window {
		if el.Truncate(time.Second) != s.last.Sub(s.start).Truncate(time.Second) {
			s.level = s.limit
		}
		reset = time.Second - el%time.Second
	} else {
		s.level = min(s.limit, s.level+s.limit*now.Sub(s.last).Seconds())
	}
	s.last = now
	status := http.StatusTooManyRequests
	if s.level >= 1 {
		s.level--
		status = http.StatusOK
	}
	if !s.window {
		reset = time.Duration((s.limit - s.level) / s.limit * float64(time.Second))
	}
	h := counts(strconv.FormatFloat(s.limit, 'f', -1, 64), strconv.FormatFloat(math.Floor(s.level), 'f', -1, 64),
		strconv.FormatFloat(reset.Seconds(), 'f', 3, 64))
	s.statuses = append(s.statuses, status)
	s.times = append(s.times, el)
	s.mu.Unlock()
	time.Sleep(s.latency)
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// A server whose resets all end at the same moment counts in windows: what
// remains is spent at once, then nothing until the reset, then the next
// window at once. A server whose resets move with the sends is a bucket
// (its resets here are all under a second): it refills as it goes, and is
// paced at its rate, however far off it says it is full.
func TestWindowsAreSpentAndBucketsArePaced(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		window  bool
		latency time.Duration
		callers int
		want    []time.Duration
	}{
		{
			// The answers come 50ms after each send: the window is spent
			// as fast as they come, and the next opens at the reset the
			// last answer read (50ms late: a reset counted from when the
			// answer came).
			"windows", true, 50 * time.Millisecond, 1,
			ms(0, 50, 100, 150, 200, 1050, 1100, 1150, 1200, 1250, 2050, 2100, 2150, 2200, 2250),
		},
		{
			// Its first counts, sent close together, are read as a
			// window's; the third tells the bucket (sent 100ms after the
			// first, its reset ends 400ms later), and from then on the
			// requests go every 200ms, though every answer says nothing
			// remains until a second later.
			"a bucket", false, 50 * time.Millisecond, 1,
			ms(0, 50, 100, 150, 200, 250, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000),
		},
		{
			// Answers of 300ms, two callers: counts sent 600ms apart in
			// one window name the same end, and the windows are spent
			// five each, never refilled at the rate as a bucket's would
			// be (which would send into them and be refused).
			"windows told apart", true, 300 * time.Millisecond, 2,
			ms(0, 200, 300, 500, 600, 1300, 1600, 1600, 1900, 1900, 2300, 2600, 2600, 2900, 2900, 3300, 3600, 3600, 3900, 3900),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newCountingServer(tc.window, 5, tc.latency)
				rt := bucket.Limit(bucket.New(bucket.PerSecond(5)))(srv)
				var wg sync.WaitGroup
				var left atomic.Int32
				left.Store(int32(len(tc.want)))
				for range tc.callers {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							_, err := get(t, rt, context.Background())
							assert.NoError(t, err)
						}
					})
				}
				wg.Wait()
				assert.Equal(t, tc.want, srv.times)
				assert.NotContains(t, srv.statuses, http.StatusTooManyRequests)
			})
		})
	}
}

// A 429 whose named wait is long beside the rate (1.5s or more, and 3
// tokens or more at the rate) names a window's end: the window is waited
// out and the rate stays, since the next window can be spent at once. A
// short one is a bucket's next token: the rate is above the server's, and
// drops (to 0.7 of itself with nothing measured yet: a guess).
func TestALongNamedWaitPausesWithoutLoweringTheRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rate  float64
		reset string
		pause time.Duration
		after float64
	}{
		{"2s at 10/s: a window", 10, "2", 2 * time.Second, 10},
		{"1.5s at 10/s: a window", 10, "1.5", 1500 * time.Millisecond, 10},
		{"1.5s at 2/s, 3 tokens: a window", 2, "1.5", 1500 * time.Millisecond, 2},
		{"1.4s at 10/s: too short for a window", 10, "1.4", 1400 * time.Millisecond, 7},
		{"2s at 1/s, 2 tokens: too few for a window", 1, "2", 2 * time.Second, 0.7},
		{"0.1s at 10/s: the next token", 10, "0.1", 100 * time.Millisecond, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScript(refuseFirst(1, counts("", "", tc.reset)))
				b := bucket.New(bucket.PerSecond(tc.rate))
				rt := bucket.Limit(b)(srv)
				send(t, rt, 1)
				assert.InDelta(t, tc.after, b.Rate().PerSecond(), 1e-9)
				send(t, rt, 1)
				assert.Equal(t, []time.Duration{0, tc.pause}, srv.arrivals())
				assert.InDelta(t, tc.after, b.Rate().PerSecond(), 1e-9, "and after the pause")
			})
		})
	}
}

// A server that named a window (a long Retry-After) and counts nothing may
// free that window's requests one by one as they leave it, as a sliding
// log does, in the order and at the pace it accepted them: its short
// waits in the window after the pause say when the next one frees, not
// that the rate is too high, and the rate stays. Past the window (the
// pause's end plus its length, at least), a short wait is judged again.
func TestShortWaitsAfterAWindowAreItsSlotsFreeing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		retryAfter := func(s string) http.Header { return http.Header{"Retry-After": {s}} }
		srv := newScript(func(i int) (int, http.Header) {
			switch i {
			case 0:
				return http.StatusTooManyRequests, retryAfter("3") // a window: 3s, 30 tokens at 10/s
			case 2, 4, 6:
				return http.StatusTooManyRequests, retryAfter("1")
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		send(t, rt, 6)
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{0, 3000 * ms, 3100 * ms, 4100 * ms, 4200 * ms, 5200 * ms}, srv.arrivals(),
			"one freed at the pause's end, and one a second later; each next refused a token later")
		assert.InDelta(t, 10, b.Rate().PerSecond(), 1e-9, "the window's requests freeing: the rate stays")
		sendAt(t, rt, start, 6*time.Second)
		assert.Less(t, b.Rate().PerSecond(), 10.0, "past the window: the rate is judged again, and drops")
	})
}

// A window's pause is the server's own, not a bucket refilling at its
// rate: a limit measured over a span that holds one would count the
// requests of the window after it over the whole pause, a fraction of the
// limit. The span of the next measure starts when the window's pause ends.
func TestAWindowsPauseStartsTheNextMeasure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Counts of nothing left, with a reset of a token's time, and
		// once of 20s: a window.
		srv := newScript(func(i int) (int, http.Header) {
			switch i {
			case 0, 8, 12, 14:
				return http.StatusTooManyRequests, counts("10", "0", "0.1")
			case 10:
				return http.StatusTooManyRequests, counts("10", "0", "20")
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		// A guess at the first 429, and a measure at the second: 7
		// accepted between them.
		send(t, rt, 9)
		measured := b.Rate().PerSecond()
		require.Less(t, measured, 7.0)
		// One accepted, then the window: 20s. After it, one accepted and a
		// 429, twice: the second comes too soon after the window's end to
		// measure anything.
		send(t, rt, 6)
		times := srv.arrivals()
		require.Len(t, times, 15)
		require.InDelta(t, 20, (times[11] - times[10]).Seconds(), 1e-6)
		assert.InDelta(t, measured, b.Rate().PerSecond(), 0.1*measured,
			"not the 3 accepted over the 21s since the measure")
	})
}

// A server that named a window may be a sliding log, which frees each
// request of its window a window after it came: sent again in step with
// our own sends then, each of ours comes a hair before the one it needs
// leaves, and a 429 names a wait shorter than a token's time. The pause
// goes half a token's time beyond it, so that our sends fall between the
// log's frees rather than just before them. A server that never named a
// window is paused exactly what it names.
func TestAWaitUnderATokenAfterAWindowIsStretchedHalfAToken(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		window bool
		want   []time.Duration
	}{
		{"after a window", true, []time.Duration{0, 3000 * ms, 3100 * ms, 3170 * ms}},
		{"no window named", false, []time.Duration{0, 100 * ms, 120 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				refused := 1
				if !tc.window {
					refused = 0
				}
				srv := newScript(func(i int) (int, http.Header) {
					switch {
					case tc.window && i == 0:
						return http.StatusTooManyRequests, counts("10", "0", "3")
					case i == refused+1:
						return http.StatusTooManyRequests, counts("10", "0", "0.02")
					}
					return http.StatusOK, nil
				})
				rt := bucket.Limit(bucket.New(bucket.PerSecond(10)))(srv)
				send(t, rt, len(tc.want))
				assert.Equal(t, tc.want, srv.arrivals(), "a token is 100ms at 10/s; the wait named, 20ms")
			})
		})
	}
}

// sendAt sends one request through rt at at since start.
func sendAt(t *testing.T, rt http.RoundTripper, start time.Time, at time.Duration) {
	t.Helper()
	time.Sleep(at - time.Since(start))
	send(t, rt, 1)
}

// A guess (a 429 before anything could be measured) is held for 2s after
// its pause: not refused again by then, the limit lies between the guess
// and the rate it lowered, and the rate heads back to just below that one,
// 0.95 of it, and climbs from there.
func TestAGuessNotRefusedHeadsBackBelowTheRateItLowered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(refuseFirst(1, counts("", "", "0.1")))
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		send(t, rt, 1)
		require.InDelta(t, 7, b.Rate().PerSecond(), 1e-9, "the guess: 0.7 of 10/s")

		// The pause ends at 100ms; the guess is held until 2.1s.
		sendAt(t, rt, start, 2100*time.Millisecond-time.Nanosecond)
		assert.InDelta(t, 7, b.Rate().PerSecond(), 1e-9, "held")
		sendAt(t, rt, start, 2100*time.Millisecond)
		assert.InDelta(t, 9.5, b.Rate().PerSecond(), 1e-9, "0.95 of the rate the guess lowered")
		// From there the cubic's convex half, whose probe is 8s long:
		// 9.5 × (1 + 0.1 × (4s/8s)³) 4s later, and the ceiling 8s later.
		sendAt(t, rt, start, 6100*time.Millisecond)
		assert.InDelta(t, 9.5*(1+0.1*0.125), b.Rate().PerSecond(), 1e-9)
		sendAt(t, rt, start, 10100*time.Millisecond)
		assert.InDelta(t, 10, b.Rate().PerSecond(), 1e-9, "capped at the ceiling, 10/s")
	})
}

// Refused again while the guess is held (and long enough after the first
// 429 to measure), the server was empty at both 429s: what it accepted in
// between is its limit, and the rate goes to 0.9 of it.
func TestA429WhileAGuessIsHeldMeasuresTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The server accepts 7 requests between two 429s.
		srv := newScript(func(i int) (int, http.Header) {
			switch i {
			case 0:
				return http.StatusTooManyRequests, counts("", "", "0.5")
			case 8:
				return http.StatusTooManyRequests, counts("", "", "0.1")
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		send(t, rt, 8)
		require.InDelta(t, 7, b.Rate().PerSecond(), 1e-9, "the guess, held")
		send(t, rt, 1)
		times := srv.arrivals()
		require.Len(t, times, 9)
		// At the guess, 7/s from the end of the pause at 0.5s: the
		// eighth after it goes at 1.5s, within the 2s the guess is held.
		require.InDelta(t, 1.5, times[8].Seconds(), 1e-6)
		limit := 7 / times[8].Seconds()
		assert.InDelta(t, 0.9*limit, b.Rate().PerSecond(), 1e-9, "0.9 of 7 accepted in the 1.5s between the 429s")
		assert.InDelta(t, 4.2, b.Rate().PerSecond(), 1e-6)

		// The guess does not head back up: the rate climbs back to the
		// limit measured, in the 8s of a first measure's probe from the
		// end of the pause.
		sendAt(t, rt, start, times[8]+100*time.Millisecond+8*time.Second)
		assert.InDelta(t, limit, b.Rate().PerSecond(), 1e-9)
	})
}

// noBurst is nginx's limit_req without a burst, and without headers: a
// request less than 1/rate after the last one it accepted is refused.
func noBurst(rate float64) func(int) (int, http.Header) {
	var last time.Time
	return func(int) (int, http.Header) {
		now := time.Now()
		if !last.IsZero() && now.Sub(last) < time.Duration(float64(time.Second)/rate) {
			return http.StatusTooManyRequests, nil
		}
		last = now
		return http.StatusOK, nil
	}
}

// Told twice the limit of a server with no burst, the client is refused
// every other request and pauses a token's time after each: the server
// stands idle for much of the span between two 429s, and what it accepted
// there measures the pattern, not the limit (about 7 of 10 a second). Such
// a measure is a bound below the limit, taken at its count's upper side
// (a request more: 11/s here, over a quarter of a second) but under the
// guess a 429 makes of the rate refused (0.7 of 14/s): the climb back to
// it takes the 2s of boundProbe, not a first measure's 8s, and goes on
// above it.
func TestAMeasureOverASpanMostlyPausedIsABoundBelowTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(noBurst(10))
		b := bucket.New(bucket.PerSecond(20))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		for b.Rate().PerSecond() >= 14-1e-9 { // 20/s, then the guess: 14/s
			send(t, rt, 1)
			require.Less(t, time.Since(start), 5*time.Second, "a measure within a few seconds")
		}
		measuredAt := time.Since(start)
		low := b.Rate().PerSecond()
		plateau := low / 0.9
		// (Measured at the chain's third 429, two accepted over about a
		// quarter of a second: the pattern to a request either way.)
		assert.InDelta(t, 0.7*14, plateau, 1e-6, "the bound: three requests over the span, under 0.7 of the 14/s refused")
		assert.Less(t, plateau, 10.0, "below the limit")

		// The pause of the 429 that measured is a token at 14/s; the
		// climb ends 2s after it, at the plateau, and goes on above.
		sendAt(t, rt, start, measuredAt+time.Second/14+2*time.Second+time.Millisecond)
		assert.GreaterOrEqual(t, b.Rate().PerSecond(), plateau*(1-1e-6), "back at the plateau 2s after the pause")
		sendAt(t, rt, start, measuredAt+time.Second/14+4*time.Second)
		assert.Greater(t, b.Rate().PerSecond(), plateau*1.09, "above it, towards the limit, 2s later")
	})
}

// A guess held without a 429 shows only that the limit is above the
// guess: a 429 soon after the rate heads back up shows it just below the
// rate it comes at (0.95 of it), not what the server accepted over a span
// spent at the guess.
func TestA429SoonAfterAHeldGuessLowersTheRateALittle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var refuse atomic.Bool
		srv := newScript(func(i int) (int, http.Header) {
			if i == 0 || refuse.Load() {
				return http.StatusTooManyRequests, nil
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		send(t, rt, 1)
		require.InDelta(t, 7, b.Rate().PerSecond(), 1e-9, "the guess")
		send(t, rt, 13) // at the guess, from a token's time at it until 1.9s
		sendAt(t, rt, start, 2200*time.Millisecond)
		require.InDelta(t, 9.5, b.Rate().PerSecond(), 1e-9, "the guess held: 0.95 of 10/s")

		refuse.Store(true)
		send(t, rt, 1) // at 9.5/s, 0.1s later
		assert.InDelta(t, 0.95*9.5, b.Rate().PerSecond(), 1e-9,
			"just below the rate refused; the span at the guess would measure 15 in 2.2s")
	})
}

// A server that counts what it has used of its limit says how fast it
// refills: a sliding log of 60 requests in 10s, with 30 in it, forgets
// them by its reset, 3 a second at least. The cubic's plateau is held at
// 0.9 of that at least, the reset counted from when the request left.
func TestTheRefillOfACountRaisesThePlateau(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var arrivals []time.Duration
		var mu sync.Mutex
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			mu.Lock()
			i := len(arrivals)
			arrivals = append(arrivals, time.Since(start))
			mu.Unlock()
			if i == 0 {
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: counts("", "", "5"), Body: http.NoBody}, nil
			}
			// Answers take a second, and the log forgets this request
			// 10s after it came: its reset is 9s when the answer comes.
			time.Sleep(time.Second)
			remaining := "30"
			if i > 1 {
				remaining = "54" // a slower refill: the plateau stays
			}
			return &http.Response{StatusCode: http.StatusOK, Header: counts("60", remaining, "9"), Body: http.NoBody}, nil
		})
		// An unknown rate, 1/s at first: the first 429's wait of 5s is 5
		// tokens, a window's, and starts the cubic at 1/s, whose probe is
		// then 60s long from the end of the pause.
		b := bucket.New(bucket.Rate{})
		rt := bucket.Limit(b)(srv)
		send(t, rt, 1)
		require.InDelta(t, 1, b.Rate().PerSecond(), 1e-9)
		send(t, rt, 1)
		require.Equal(t, 5*time.Second, arrivals[1])
		sendAt(t, rt, start, 64*time.Second)
		// Answered at 65s, at the end of the probe: the rate is the
		// plateau, 0.9 × 30 requests / 10s.
		assert.InDelta(t, 2.7, b.Rate().PerSecond(), 1e-9)
	})
}

// useRun is a Limit with an unknown rate and a ceiling of 10/s, against a
// server that accepts everything but what refuse marks.
type useRun struct {
	srv    *script
	rt     http.RoundTripper
	b      *bucket.Bucket
	refuse atomic.Bool // the next answer is a 429 with a short reset
	// The rates after the 429 that ends the first minute, and after the
	// answer that ends its pause.
	guess, after float64
}

// runUse sends a minute of one request every 250ms through a Limit made
// with opts, then one refused, whose guess lowers the rate to 7/s, and one
// after its pause.
func runUse(t *testing.T, opts ...bucket.LimitOption) *useRun {
	u := &useRun{b: bucket.New(bucket.Rate{})}
	u.srv = newScript(func(int) (int, http.Header) {
		if u.refuse.CompareAndSwap(true, false) {
			return http.StatusTooManyRequests, counts("", "", "0.1")
		}
		return http.StatusOK, nil
	})
	u.rt = bucket.Limit(u.b, append([]bucket.LimitOption{bucket.WithCeiling(bucket.PerSecond(10))}, opts...)...)(u.srv)
	for at := time.Duration(0); at < time.Minute; at += 250 * time.Millisecond {
		sendAt(t, u.rt, u.srv.start, at)
	}
	require.InDelta(t, 10, u.b.Rate().PerSecond(), 1e-9, "slow start reached the ceiling")
	u.refuse.Store(true)
	sendAt(t, u.rt, u.srv.start, time.Minute)
	u.guess = u.b.Rate().PerSecond()
	send(t, u.rt, 1)
	u.after = u.b.Rate().PerSecond()
	return u
}

// inUseFloor is the floor Together's rule (twice the successful rate over
// the time in use, at least a minute) predicts from arrivals, all accepted
// but the refused ones, and the limiter keeps 0.98 of.
func inUseFloor(arrivals []time.Duration, refused int) float64 {
	used := max(arrivals[len(arrivals)-1]-arrivals[0], time.Minute)
	return 0.98 * 2 * float64(len(arrivals)-refused) / used.Seconds()
}

// With a limit that grows with use (WithUseBasedLimit) and an unknown
// rate, the rate never stays below what the rule predicts from what the
// server accepted: a guess under it is raised to it as its pause ends.
// A factor or a span that is not positive turns the rule off.
func TestAUseBasedLimitFloorsTheRate(t *testing.T) {
	together := bucket.WithUseBasedLimit(2, time.Hour, bucket.PerMinute(60))
	t.Run("Together's rule", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			u := runUse(t, together)
			assert.InDelta(t, 7, u.guess, 1e-9, "the guess: 0.7 of 10/s")
			times := u.srv.arrivals()
			floor := inUseFloor(times, 1)
			require.Greater(t, floor, 7.0)
			require.Less(t, floor, 10.0)
			assert.InDelta(t, floor, u.after, 1e-9, "raised to 0.98 × 2 × %d accepted in %v", len(times)-1, times[len(times)-1])
		})
	})
	// Off, a rule whose base is 9/s would raise the guess of 7/s to 0.98
	// of 9/s: it stays.
	base := bucket.PerSecond(9)
	for _, tc := range []struct {
		name string
		opts []bucket.LimitOption
	}{
		{"no rule", nil},
		{"a factor of 0", []bucket.LimitOption{bucket.WithUseBasedLimit(0, time.Hour, base)}},
		{"a negative factor", []bucket.LimitOption{bucket.WithUseBasedLimit(-2, time.Hour, base)}},
		{"a span of 0", []bucket.LimitOption{bucket.WithUseBasedLimit(2, 0, base)}},
		{"a negative span", []bucket.LimitOption{bucket.WithUseBasedLimit(2, -time.Hour, base)}},
		{"turned off after it was set", []bucket.LimitOption{together, bucket.WithUseBasedLimit(0, 0, base)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := runUse(t, tc.opts...)
				assert.InDelta(t, 7, u.guess, 1e-9)
				assert.InDelta(t, 7, u.after, 1e-9, "the guess is held")
			})
		})
	}
}

// Refused at a rate within 0.9 to 1 of what the rule predicts, the
// prediction is wrong (the server grants less: a fixed limit, or the cap
// of a growing one), and it is set aside: the rate is no longer raised to
// it.
func TestAUseBasedPredictionRefusedIsSetAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := runUse(t, bucket.WithUseBasedLimit(2, time.Hour, bucket.PerMinute(60)))
		// On at one every 250ms, while the raised rate is held, and
		// refused at it 1.1s after the first 429: a measure.
		for _, at := range []time.Duration{60350, 60600, 60850} {
			sendAt(t, u.rt, u.srv.start, at*time.Millisecond)
		}
		u.refuse.Store(true)
		sendAt(t, u.rt, u.srv.start, 61100*time.Millisecond)
		prediction := inUseFloor(u.srv.arrivals(), 2) / 0.98
		require.GreaterOrEqual(t, u.after/prediction, 0.9, "refused within 0.9 to 1 of the prediction")
		require.LessOrEqual(t, u.after/prediction, 1.0)

		send(t, u.rt, 1) // after the pause
		// The rate is 0.9 of the 4 requests accepted in the 1.1s between
		// the two 429s, and stays there, far under the prediction.
		assert.InDelta(t, 0.9*4/1.1, u.b.Rate().PerSecond(), 1e-9)
		assert.Less(t, u.b.Rate().PerSecond(), inUseFloor(u.srv.arrivals(), 2)/2, "not raised to it")
	})
}

// Slow start grows the rate only as far as it is used: no further than
// its doubling takes what the server accepted in the last second, in a
// second (two doublings). A minute of one request a second leaves it at
// four a second, not doubled 120 times.
func TestSlowStartGrowsOnlyARateInUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		b := bucket.New(bucket.Rate{})
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		for i := range 60 {
			sendAt(t, rt, start, time.Duration(i)*time.Second)
		}
		assert.LessOrEqual(t, b.Rate().PerSecond(), 4.0)

		// Used, it doubles again: 64 callers for 5 s.
		var wg sync.WaitGroup
		until := time.Now().Add(5 * time.Second)
		for range 64 {
			wg.Go(func() {
				for n := 0; n < 100 && time.Now().Before(until); n++ { // bounded, should the rate be
					_, err := get(t, rt, context.Background())
					assert.NoError(t, err)
				}
			})
		}
		wg.Wait()
		assert.Greater(t, b.Rate().PerSecond(), 16.0, "doubling while it is used")
	})
}

// A 429 long after a pause, the key idle since, starts a pause of its own:
// it lowers the rate and pauses one token's time, as any first 429 does,
// rather than doubling the old pause as a resumption refused at once.
func TestA429AfterAnIdleSpellIsNotTheOldPauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(int) (int, http.Header) { return http.StatusTooManyRequests, nil })
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		start := time.Now()
		send(t, rt, 1)
		require.InDelta(t, 7, b.Rate().PerSecond(), 1e-9, "the first 429: a guess")
		sendAt(t, rt, start, time.Minute)
		assert.InDelta(t, 7*0.95, b.Rate().PerSecond(), 1e-9, "lowered again: the first 429 after a quiet spell")
		sendAt(t, rt, start, time.Minute)
		got := srv.arrivals()
		require.Len(t, got, 3)
		assert.Equal(t, time.Minute+time.Second/7, got[2], "paused one token's time at 7 a second, not twice it")
	})
}
