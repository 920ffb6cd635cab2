package reallimit_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/compare/reallimit"
)

// modelServer answers in memory as the real servers decide, for tests in
// a synctest bubble, where time is exact: nginx's limit_req (excess in
// thousandths of a request, a millisecond clock) or express-rate-limit's
// fixed window. It keeps one key's state; stall, when set, holds the
// arrival with the given number (from 0) that long before the server sees
// it, as a stalled client or network would.
type modelServer struct {
	leaky *reallimit.LeakyBucket
	fixed *reallimit.FixedWindow
	stall func(arrival int) time.Duration

	mu       sync.Mutex
	arrivals int
	seen     bool
	excess   int64     // nginx: thousandths of a request over the rate
	last     time.Time // nginx: the last admission
	end      time.Time // express: when the current window ends
	hits     int       // express: requests in the current window
}

func (m *modelServer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	m.mu.Lock()
	n := m.arrivals
	m.arrivals++
	m.mu.Unlock()
	if m.stall != nil {
		timer := time.NewTimer(m.stall(n))
		select {
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			return nil, req.Context().Err()
		}
	}
	status := http.StatusOK
	if !m.admit(time.Now()) {
		status = http.StatusTooManyRequests
	}
	return &http.Response{
		StatusCode: status, Status: http.StatusText(status), Request: req,
		Header: http.Header{}, Body: io.NopCloser(strings.NewReader(reallimit.Completion)),
	}, nil
}

func (m *modelServer) admit(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fixed != nil {
		if !now.Before(m.end) {
			m.end, m.hits = now.Add(m.fixed.Window), 0
		}
		m.hits++
		return m.hits <= m.fixed.Quota
	}
	excess := int64(0)
	if m.seen {
		ms := now.Sub(m.last).Milliseconds()
		excess = max(0, m.excess-int64(m.leaky.PerSecond*1000)*ms/1000+1000)
		if excess > int64(m.leaky.Burst)*1000 {
			return false
		}
	}
	m.seen, m.excess, m.last = true, excess, now
	return true
}

func newModel(l reallimit.Limiter) *modelServer {
	switch l := l.(type) {
	case reallimit.LeakyBucket:
		return &modelServer{leaky: &l}
	case reallimit.FixedWindow:
		return &modelServer{fixed: &l}
	}
	panic("no model of " + l.String())
}

// TestPlanMeetsTheOracle: against servers that decide exactly as nginx and
// express-rate-limit do, with no latency and no jitter, the oracle as a
// client takes the oracle's time to the nanosecond (stretched as asked)
// and is never refused. So the oracle is reachable, and no lower.
func TestPlanMeetsTheOracle(t *testing.T) {
	for _, l := range []reallimit.Limiter{reallimit.NginxBurst, reallimit.NginxNoBurst, reallimit.ExpressLimit} {
		for _, stretch := range []float64{0, 0.01} {
			synctest.Test(t, func(t *testing.T) {
				const n = 250
				res := reallimit.Run{Requests: n, Callers: 8, Base: newModel(l), Stack: reallimit.Plan(l, stretch)}.Do(context.Background())
				assert.Equal(t, n, res.Succeeded, "%v", res.Problems)
				assert.Zero(t, res.Refused, "%v, stretch %v", l, stretch)
				assert.Equal(t, n, res.Arrivals)
				want := time.Duration(float64(reallimit.Oracle(l, n)) * (1 + stretch))
				assert.Equal(t, want, res.Time, "%v, stretch %v", l, stretch)
			})
		}
	}
}

// TestPlanFollowsAStall: a request that reaches nginx 50 ms late moves the
// server's state; the plan moves with it instead of having every later
// request refused, and loses just those 50 ms.
func TestPlanFollowsAStall(t *testing.T) {
	for _, l := range []reallimit.Limiter{reallimit.NginxBurst, reallimit.NginxNoBurst, reallimit.ExpressLimit} {
		synctest.Test(t, func(t *testing.T) {
			const n, late = 250, 50 * time.Millisecond
			server := newModel(l)
			// Past nginx's burst, one request is alone in its step; the
			// second fixed window opens with all eight callers at once, so
			// all eight are held, or the first not held would open it.
			first, last := 40, 40
			if _, ok := l.(reallimit.FixedWindow); ok {
				first, last = 100, 107
			}
			server.stall = func(i int) time.Duration {
				if i >= first && i <= last {
					return late
				}
				return 0
			}
			res := reallimit.Run{Requests: n, Callers: 8, Base: server, Stack: reallimit.Plan(l, 0)}.Do(context.Background())
			assert.Equal(t, n, res.Succeeded, "%v", res.Problems)
			assert.Zero(t, res.Refused, "%v", l)
			assert.Equal(t, reallimit.Oracle(l, n)+late, res.Time, "%v", l)
		})
	}
}

// TestRunCounts: what a run reports, on a server that refuses every other
// request and a client with no retries, and on one too slow for the
// deadline.
func TestRunCounts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		server := &modelServer{leaky: &reallimit.LeakyBucket{PerSecond: 1}} // 1 a second, no burst
		res := reallimit.Run{Requests: 10, Callers: 1, Base: server, Stack: func(next http.RoundTripper) http.RoundTripper {
			return roundTripFunc(func(req *http.Request) (*http.Response, error) {
				time.Sleep(500 * time.Millisecond) // two requests a second: half refused
				return next.RoundTrip(req)
			})
		}}.Do(context.Background())
		assert.Equal(t, reallimit.Result{
			Requests: 10, Succeeded: 5, Failed: 5, Arrivals: 10, Refused: 5, Time: 5 * time.Second,
			Problems: []string{"answered Too Many Requests", "answered Too Many Requests", "answered Too Many Requests",
				"answered Too Many Requests", "answered Too Many Requests"},
		}, res)
		assert.InDelta(t, 0.5, res.RefusedShare(), 1e-9)
		assert.Equal(t, 5, res.Lost())
	})
	synctest.Test(t, func(t *testing.T) {
		server := &modelServer{fixed: &reallimit.FixedWindow{Quota: 100, Window: time.Minute}}
		server.stall = func(int) time.Duration { return 3 * time.Second }
		res := reallimit.Run{Requests: 10, Callers: 2, MaxTime: 5 * time.Second, Base: server}.Do(context.Background())
		// The first round of two is answered at 3 s; the second would be
		// at 6 s, past the 5 s deadline, which cuts it; the other six are
		// never sent.
		assert.Equal(t, 2, res.Succeeded)
		assert.Equal(t, 8, res.Unfinished)
		assert.Zero(t, res.Failed)
		assert.Equal(t, 2, res.Arrivals)
		assert.Zero(t, res.Errors, "cut by the deadline, not failed")
		assert.Equal(t, 5*time.Second, res.Time)
		assert.Equal(t, 3*time.Second, res.RTT)
		require.Len(t, res.Problems, 2)
		assert.Contains(t, res.Problems[0], "cut by the deadline")
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }
