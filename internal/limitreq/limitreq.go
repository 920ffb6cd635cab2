// Package limitreq models nginx's limit_req module as an http.RoundTripper,
// for tests run inside testing/synctest bubbles: the module's own
// arithmetic (the excess in thousandths of a request, on a millisecond
// clock), with a burst served at once (nodelay) or none, refusing with a
// bare 429 (limit_req_status 429), which names no wait and counts nothing.
// Its answers take a little jittered time, as loopback's do, so that a
// client's requests reach it in an order and at instants that vary from
// seed to seed.
package limitreq

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Server is one limit_req zone with a single key.
type Server struct {
	rate  int64 // requests a second, in thousandths
	burst int64 // in thousandths

	mu       sync.Mutex
	rng      *rand.Rand
	start    time.Time
	seen     bool  // a request has been accepted: excess and last hold
	excess   int64 // in thousandths
	last     int64 // ms since start of the last accepted request
	arrivals int
	refused  int
}

// New returns a zone of rate requests a second and a burst of burst,
// whose latencies are drawn from seed.
func New(rate, burst int, seed uint64) *Server {
	return &Server{rate: int64(rate) * 1000, burst: int64(burst) * 1000, start: time.Now(),
		rng: rand.New(rand.NewPCG(seed, 7))}
}

// RoundTrip answers req after 0.1 to 1.6 ms, 200 or a bare 429.
func (s *Server) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	s.mu.Lock()
	lat := time.Duration(100+s.rng.IntN(1500)) * time.Microsecond
	s.mu.Unlock()
	time.Sleep(lat)

	s.mu.Lock()
	now := time.Since(s.start).Milliseconds()
	s.arrivals++
	status := http.StatusOK
	if s.seen {
		// ngx_http_limit_req_lookup: the excess drains at the rate since
		// the last accepted request, plus this one.
		excess := max(s.excess-s.rate*(now-s.last)/1000+1000, 0)
		if excess > s.burst {
			status = http.StatusTooManyRequests
			s.refused++
		} else {
			s.excess, s.last = excess, now
		}
	} else {
		s.seen, s.excess, s.last = true, 0, now
	}
	s.mu.Unlock()
	time.Sleep(100 * time.Microsecond)
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
}

// Counts returns how many requests reached the server, and how many of
// them it refused.
func (s *Server) Counts() (arrivals, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrivals, s.refused
}

// Least is the least time from the first request to the last answer of n
// requests through a zone of rate a second and burst: the first burst+1
// go at once, then one each 1/rate.
func Least(n, rate, burst int) time.Duration {
	return time.Duration(max(n-1-burst, 0)) * time.Second / time.Duration(rate)
}

// Drive sends n chat requests through rt from callers goroutines, each
// sending its next when its last is answered, and returns the time from
// the first send to the last answer. A request that fails or is not
// answered 200 is returned as an error, after the rest are done.
func Drive(rt http.RoundTripper, n, callers int) (time.Duration, error) {
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		last   time.Time
		failed error
	)
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				err := send(rt)
				mu.Lock()
				if err != nil && failed == nil {
					failed = err
				}
				last = time.Now()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return last.Sub(start), failed
}

func send(rt http.RoundTripper) error {
	req, err := http.NewRequest(http.MethodPost, "http://limitreq.test/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[]}`))
	if err != nil {
		return err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusError{resp.StatusCode}
	}
	return nil
}

type statusError struct{ status int }

func (e *statusError) Error() string { return "limitreq: answered " + http.StatusText(e.status) }

// Run is one run of 400 requests from 8 callers against a zone of 10
// requests a second and burst, in a synctest bubble, through the stack
// wrap builds around it: its time over the least time, and the share of
// arrivals the zone refused. A request that fails fails t.
func Run(t *testing.T, burst int, seed uint64, wrap func(http.RoundTripper) http.RoundTripper) (ratio, share float64) {
	t.Helper()
	const n, callers, rate = 400, 8, 10
	synctest.Test(t, func(t *testing.T) {
		srv := New(rate, burst, seed)
		rt := wrap(srv)
		took, err := Drive(rt, n, callers)
		if err != nil {
			t.Errorf("a request failed while its deadline had room: %v", err)
		}
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
		arrivals, refused := srv.Counts()
		ratio = took.Seconds() / Least(n, rate, burst).Seconds()
		share = float64(refused) / float64(arrivals)
	})
	return ratio, share
}

// Goals are what a stack must reach against a zone, as against the real
// nginx (compare/reallimit): time over the least time, and the share of
// arrivals refused.
const (
	GoalRatio = 1.15
	GoalShare = 0.02
)

// HoldToGoals runs the stack stack(told) builds (told: the limit it is
// told, as a multiple of the zone's; 0 for nothing) against a zone with a
// burst of 10 and with none, told the limit, twice it and nothing, four
// seeds each, and fails t where a run misses a goal.
func HoldToGoals(t *testing.T, stack func(told float64) func(http.RoundTripper) http.RoundTripper) {
	for _, burst := range []int{10, 0} {
		for _, told := range []float64{1, 2, 0} {
			t.Run(fmt.Sprintf("burst=%d/told=%gx", burst, told), func(t *testing.T) {
				for seed := range uint64(4) {
					ratio, share := Run(t, burst, seed, stack(told))
					t.Logf("seed %d: %.3f, %.2f%% 429s", seed, ratio, 100*share)
					if ratio > GoalRatio {
						t.Errorf("seed %d: %.3f of the least time, more than %.2f", seed, ratio, GoalRatio)
					}
					if share > GoalShare {
						t.Errorf("seed %d: %.2f%% of arrivals refused, more than %.0f%%", seed, 100*share, 100*GoalShare)
					}
				}
			})
		}
	}
}
