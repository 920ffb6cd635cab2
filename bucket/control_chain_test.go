package bucket_test

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/internal/limitreq"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// refuseAt is a server that says nothing: it answers 429 to the requests
// whose indexes are listed, 200 to every other.
func refuseAt(idx ...int) func(int) (int, http.Header) {
	refused := make(map[int]bool, len(idx))
	for _, i := range idx {
		refused[i] = true
	}
	return func(i int) (int, http.Header) {
		if refused[i] {
			return http.StatusTooManyRequests, nil
		}
		return http.StatusOK, nil
	}
}

// sendOneByOne sends n requests one after the other and returns the
// bucket's rate after each.
func sendOneByOne(t *testing.T, rt http.RoundTripper, b *bucket.Bucket, n int) []float64 {
	t.Helper()
	rates := make([]float64, n)
	for i := range n {
		send(t, rt, 1)
		rates[i] = b.Rate().PerSecond()
	}
	return rates
}

// Refused again too soon after a guess to measure over minSpan, by a
// server that says nothing, the client is refused at a rate known to be
// too high until minSpan has passed. But the server was empty at each
// refusal, so what it accepted between the first and the last is its
// refill: once a 429 too soon to measure came between and two requests
// went through, the span measures, however short.
func TestAChainOfRefusalsMeasuresAServerThatSaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 429, 200, 429 (too soon), 200, 200, 429: three accepted between
		// the first 429 and the third.
		srv := newScript(refuseAt(0, 2, 5))
		b := bucket.New(bucket.PerSecond(20))
		rt := bucket.Limit(b)(srv)
		rates := sendOneByOne(t, rt, b, 6)
		times := srv.arrivals()
		require.InDelta(t, 14, rates[2], 1e-9, "the guess (0.7 of 20/s) holds through the 429 too soon to measure")
		span := times[5] - times[0]
		require.Less(t, span, 500*time.Millisecond, "a span shorter than minSpan")
		assert.InDelta(t, 0.9*3/span.Seconds(), rates[5], 1e-6, "0.9 of the 3 accepted over the span")
	})
}

// Without a 429 too soon to measure between, two refusals a short span
// apart are not a chain: a jitter's 429 at a rate near the limit, with
// the server perhaps not empty at the first. The span goes on.
func TestTwoRefusalsAloneDoNotMeasureAShortSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(refuseAt(0, 3))
		b := bucket.New(bucket.PerSecond(20))
		rt := bucket.Limit(b)(srv)
		rates := sendOneByOne(t, rt, b, 4)
		require.Less(t, srv.arrivals()[3]-srv.arrivals()[0], 500*time.Millisecond)
		assert.InDelta(t, 14, rates[3], 1e-9, "still the guess: nothing measured")
	})
}

// Two measures of a server that says nothing, the second over the span
// that began at the 429 that ended the first, are one measure over both
// spans when they agree within a request's count: a short measure is good
// to one request either way, and the pooled count halves that.
func TestAdjoiningMeasuresArePooled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The chain of the first test, then 200, 429 (too soon), 200,
		// 200, 429: three accepted again.
		srv := newScript(refuseAt(0, 2, 5, 7, 10))
		b := bucket.New(bucket.PerSecond(20))
		rt := bucket.Limit(b)(srv)
		rates := sendOneByOne(t, rt, b, 11)
		times := srv.arrivals()
		first := 3 / (times[5] - times[0]).Seconds()
		second := 3 / (times[10] - times[5]).Seconds()
		require.NotEqual(t, first, second)
		require.InDelta(t, 0.9*first, rates[5], 1e-6, "the first measure")
		pooled := 6 / (times[10] - times[0]).Seconds()
		assert.InDelta(t, 0.9*pooled, rates[10], 1e-6, "six accepted over both spans, not the second's three alone")
	})
}

// A measure over a span spent half in the process's own pauses is a bound
// below the limit of a server that holds one request at most (its refill
// is lost while it is full), and the climb above it comes within 2s. A
// server shown to hold more (a resumption had two requests accepted before
// the next refusal, or it accepted, in the second before the guess's 429,
// well above what the chain then measures) refilled through the pauses:
// the measure is the limit, and the climb back to it takes the first
// measure's 8s.
func TestABurstShowsTheMeasureIsTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refused []int // a chain that measures at its third 429
		last    int   // the index of that 429
		bound   bool
	}{
		{"one accepted each time: a bound", []int{0, 2, 4}, 4, true},
		{"two accepted at once: the limit", []int{0, 2, 5}, 5, false},
		{"a second at 20/s accepted first: the limit", []int{20, 22, 24}, 24, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newScript(refuseAt(tc.refused...))
				b := bucket.New(bucket.PerSecond(20))
				rt := bucket.Limit(b)(srv)
				start := time.Now()
				rates := sendOneByOne(t, rt, b, tc.last+1)
				plateau := rates[tc.last] / 0.9
				require.Less(t, plateau, 14.0, "measured")
				// The pause of the 429 that measured is a token at the
				// guess, 14/s; 2s after it a bound's climb is back at the
				// plateau, a limit's is not.
				at := srv.arrivals()[tc.last] + time.Second/14 + 2*time.Second + time.Millisecond
				sendAt(t, rt, start, at)
				if tc.bound {
					assert.GreaterOrEqual(t, b.Rate().PerSecond(), plateau*(1-1e-6), "a bound: back at the plateau within 2s")
				} else {
					assert.Less(t, b.Rate().PerSecond(), plateau*0.99, "the limit: still climbing back to it")
				}
			})
		})
	}
}

// leakyBucket is nginx's limit_req with burst=burst nodelay and no
// headers: a request is admitted while the excess of requests over the
// rate, drained at the rate, stays within the burst; a refused one leaves
// no trace.
func leakyBucket(rate, burst float64) func(int) (int, http.Header) {
	var (
		mu     sync.Mutex
		excess float64
		last   time.Time
	)
	return func(int) (int, http.Header) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		e := 1.0
		if !last.IsZero() {
			e = max(0, excess-rate*now.Sub(last).Seconds()) + 1
		}
		if e > burst+1 {
			return http.StatusTooManyRequests, nil
		}
		excess, last = e, now
		return http.StatusOK, nil
	}
}

// A use-based rule (WithUseBasedLimit) reads a limit that grows with use,
// and lifts the rate to it. Against a server with a fixed limit, which says
// nothing, the lift is refused: the rule's reading is set aside, and the
// rate goes back to what the controller had measured itself, or to what
// the server accepted since its last 429, not to just below the lift,
// where it is refused again.
func TestARefusedLiftOfTheUseBasedRuleGoesBackToTheMeasure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const limit = 10
		srv := newScript(leakyBucket(limit, 10))
		b := bucket.New(bucket.PerSecond(2 * limit))
		var (
			mu      sync.Mutex
			refused []float64 // the rate each 429 left
		)
		rt := bucket.Limit(b,
			bucket.WithCeiling(bucket.PerSecond(100)),
			bucket.WithUseBasedLimit(2, time.Hour, bucket.PerMinute(60)),
			bucket.WithEvents(func(e transport.Event) {
				if e.Kind == transport.EventPaused {
					mu.Lock()
					refused = append(refused, -1) // marks a 429; the rate follows
					mu.Unlock()
				}
			}),
		)(srv)
		start := time.Now()
		var lifted, after float64
		for time.Since(start) < 45*time.Second {
			mu.Lock()
			n := len(refused)
			mu.Unlock()
			before := b.Rate().PerSecond()
			send(t, rt, 1)
			mu.Lock()
			if len(refused) > n && time.Since(start) > 30*time.Second && lifted == 0 {
				lifted, after = before, b.Rate().PerSecond()
			}
			mu.Unlock()
		}
		require.Greater(t, lifted, 1.1*limit, "the rule lifted the rate well above the limit, and was refused")
		assert.LessOrEqual(t, after, 1.01*limit, "back to about the limit, not 0.95 of the lift")
	})
}

// A 429 that comes in a quiet 429's hold, when the server, which says
// nothing, accepted every other request sent since that 429, is taken
// for timing's jitter (a request that reached a server with no burst
// late, the next on time): the rate held stays. Measured, the span would
// count the pause after the quiet 429 as the server's, and the rate would
// drop a tenth under a limit found too low, for a minute. A second 429 in
// the hold measures.
func TestA429OfJitterInAQuietHoldKeepsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The first 429 guesses; 100 requests on (ten seconds, a quiet
		// spell), a quiet 429; 15 on, in its hold, one of jitter; 15
		// more, another.
		srv := newScript(refuseAt(20, 120, 135, 150))
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		rates := sendOneByOne(t, rt, b, 151)
		held := rates[120]
		require.Less(t, held, rates[119], "the quiet 429 lowers the rate")
		assert.InDelta(t, held, rates[135], 1e-9, "the 429 of jitter keeps the rate held")
		assert.Less(t, rates[150], 0.95*held, "a second 429 in the hold measures")
	})
}

// A bound is taken at its count's upper side: one request more over the
// span (a count is good to a request either way, and a bound errs low
// already), but no higher than the guess a 429 makes of the rate refused.
func TestABoundCountsARequestMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One accepted between 429s, twice: a bound (see above).
		srv := newScript(refuseAt(0, 2, 4))
		b := bucket.New(bucket.PerSecond(20))
		rt := bucket.Limit(b)(srv)
		rates := sendOneByOne(t, rt, b, 5)
		times := srv.arrivals()
		span := (times[4] - times[0]).Seconds()
		assert.Greater(t, rates[4], 0.9*2/span*1.2, "more than the two accepted over the span")
		assert.InDelta(t, 0.9*min(3/span, 0.7*14), rates[4], 1e-6, "three requests over the span, at most 0.7 of the 14/s refused")
	})
}

// A quiet 429 (the first after a quiet spell) holds the rate just below the
// one refused, to see whether the limit lies there. A use-based rule's
// reading does not lift the rate during that hold: the refusal answered it
// for those seconds. Against nginx's limit_req with no burst, told the
// limit, the rule's reading over the time in use (twice what was sent,
// over at least a minute) passes the limit half a minute in; lifting the
// hold to it was refused again at once, and the chain that followed
// measured the limit low (0.86 of it for the rest of the run).
func TestAQuietHoldIsNotLiftedByTheUseBasedRule(t *testing.T) {
	for seed := range uint64(4) {
		synctest.Test(t, func(t *testing.T) {
			type event struct {
				at      time.Duration
				refused bool
				rate    float64
			}
			var (
				mu     sync.Mutex
				events []event
			)
			start := time.Now()
			rt := transport.Chain(limitreq.New(10, 0, seed), retry.New(), bucket.Limit(bucket.New(bucket.PerSecond(10)),
				bucket.WithUseBasedLimit(2, time.Hour, bucket.PerMinute(60)),
				bucket.WithEvents(func(e transport.Event) {
					mu.Lock()
					defer mu.Unlock()
					switch e.Kind {
					case transport.EventPaused:
						events = append(events, event{at: time.Since(start), refused: true})
					case transport.EventRateChanged:
						events = append(events, event{at: time.Since(start), rate: e.Rate})
					}
				})))
			_, err := limitreq.Drive(rt, 500, 8)
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			holds, last := 0, time.Duration(-1)
			for i, e := range events {
				if !e.refused {
					continue
				}
				quiet := last >= 0 && e.at-last > 5*time.Second
				last = e.at
				if !quiet || i+1 >= len(events) || events[i+1].refused {
					continue
				}
				held := events[i+1].rate
				holds++
				for _, f := range events[i+2:] {
					if f.at > e.at+4*time.Second || f.refused {
						break
					}
					assert.LessOrEqual(t, f.rate, held, "seed %d: at %v the hold of the 429 at %v was lifted", seed, f.at, e.at)
				}
			}
			assert.Positive(t, holds, "seed %d: a quiet 429 came, and was held", seed)
		})
	}
}
