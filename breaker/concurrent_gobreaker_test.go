package breaker_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// TestDecidesAsGobreakerWithRequestsInFlight holds the breaker to a
// gobreaker told of every request at its end, as
// TestDecidesAsGobreakerToldOfEveryRequest does, with requests that
// overlap: each takes a latency drawn from a seeded source, so that
// requests are in flight across trips, probes and closes, and end in
// another order than they started. The run is deterministic: in a synctest
// bubble, requests start at even instants and end at odd ones, no two at
// the same instant, so each goroutine runs alone, and both breakers see
// the same outcomes in the same order.
//
// The reference is gobreaker with the settings the breaker documents: a
// request started while it is closed is told (Allow and its outcome) when
// it ends, unless the breaker changed state in between; one started
// while it is open or half-open asks Allow when it starts and tells its
// outcome when it ends.
func TestDecidesAsGobreakerWithRequestsInFlight(t *testing.T) {
	slow := []tripRules{
		{inARow: 5, ratio: 0.5, least: 20, probes: 3},
		{inARow: 0, ratio: 0.5, least: 10, probes: 2},
		{inARow: 3, ratio: 0, probes: 1},
	}
	// Windows of a few nanoseconds hold a few requests: rules to match,
	// and buckets of one and two nanoseconds.
	fast := []tripRules{
		{inARow: 3, ratio: 0.5, least: 4, probes: 2},
		{inARow: 0, ratio: 0.5, least: 3, probes: 1},
	}
	type clock struct {
		unit   time.Duration // about the mean gap between two starts
		window time.Duration
		rules  []tripRules
	}
	for _, c := range []clock{
		{unit: 100 * time.Millisecond, window: 30 * time.Second, rules: slow},
		{unit: 2 * time.Nanosecond, window: 30 * time.Nanosecond, rules: fast},
		{unit: 2 * time.Nanosecond, window: 13 * time.Nanosecond, rules: fast},
	} {
		for _, r := range c.rules {
			for seed := range uint64(3) {
				t.Run(fmt.Sprintf("window=%v/%+v/seed=%d", c.window, r, seed), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						differential(t, c.unit, c.window, r, seed)
					})
				})
			}
		}
	}
}

func differential(t *testing.T, unit, window time.Duration, r tripRules, seed uint64) {
	timeout := 40 * unit // even, so that no open period ends at a start
	var (
		want, got []string
		refPhase  uint64
		refClosed = true
	)
	ref := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		MaxRequests:  r.probes,
		Interval:     window,
		BucketPeriod: (window + 9) / 10,
		Timeout:      timeout,
		ReadyToTrip:  r.trip,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			refPhase++
			refClosed = to == gobreaker.StateClosed
			want = append(want, fmt.Sprintf("%v %v->%v", time.Now().UnixNano(), from, to))
		},
	})
	inner := transport.Func(func(req *http.Request) (*http.Response, error) {
		var lat time.Duration
		var fail bool
		_, _ = fmt.Sscanf(req.Header.Get("X-Plan"), "%d %t", &lat, &fail)
		time.Sleep(lat)
		status := http.StatusOK
		if fail {
			status = http.StatusServiceUnavailable
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody}, nil
	})
	rt := breaker.New(r.options(window, timeout, func(ev transport.Event) {
		got = append(got, fmt.Sprintf("%v %v->%v", time.Now().UnixNano(), ev.From, ev.To))
	})...)(inner)

	rng := rand.New(rand.NewPCG(seed, 11))
	start := time.Now()
	ends := map[time.Duration]bool{}
	var (
		wg                      sync.WaitGroup
		mu                      sync.Mutex // the goroutines run one at a time, but the race detector does not know
		mismatches              []string
		refused, inFlight, most int
	)
	share := 0.0
	const requests = 4000
	for i := range requests {
		if i%150 == 0 {
			share = []float64{0, 0.1, 0.4, 0.6, 0.9, 1}[rng.IntN(6)]
		}
		// Starts at even instants (from the bubble's start), ends at odd
		// ones, each end at an instant of its own.
		time.Sleep(2 * time.Duration(1+rng.Int64N(int64(unit))))
		at := time.Since(start)
		var lat time.Duration
		for lat == 0 || ends[at+lat] {
			lat = 2*time.Duration(rng.Int64N(int64(4*unit))) + 1
		}
		ends[at+lat] = true
		fail := rng.Float64() < share

		// The reference: admission as the request starts.
		mu.Lock()
		var refDone func(error)
		refAdmitted, refStartClosed, refStartPhase := true, refClosed, refPhase
		if !refClosed {
			d, err := ref.Allow()
			refDone, refAdmitted = d, err == nil
		}
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
			if err != nil {
				panic(err)
			}
			req.Header.Set("X-Plan", fmt.Sprintf("%d %t", lat, fail))
			resp, err := rt.RoundTrip(req)
			mu.Lock()
			defer mu.Unlock()
			admitted := err == nil
			if admitted {
				_ = resp.Body.Close()
			} else {
				refused++
			}
			if admitted != refAdmitted {
				mismatches = append(mismatches, fmt.Sprintf("request %d at %v: admitted %v, by gobreaker %v", i, at, admitted, refAdmitted))
			}
			inFlight--
			if !refAdmitted || !admitted {
				return
			}
			// The reference: the outcome as the request ends.
			var out error
			if fail {
				out = fmt.Errorf("503")
			}
			switch {
			case !refStartClosed:
				refDone(out)
			case refPhase == refStartPhase:
				if d, err := ref.Allow(); err == nil {
					d(out)
				}
			}
		}()
	}
	wg.Wait()
	assert.Empty(t, mismatches, "admissions")
	assert.Equal(t, want, got, "changes of state")
	// The run must have tripped, probed and closed with requests in
	// flight, or it compared nothing of interest.
	assert.Greater(t, len(want), 6, "changes of state")
	assert.Greater(t, refused, 50)
	assert.Greater(t, most, 3, "requests in flight at once")
	t.Logf("%d changes of state, %d of %d requests refused, at most %d in flight", len(want), refused, requests, most)
}
