package bucket_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// The mixed-traffic goal: one key at 600 RPM enforced per second, a batch
// of 5,000 requests queued at t = 0, and an interactive request every 2 s
// for 5 minutes, through retry outside Limit.
const (
	mixedBatch       = 5000
	mixedInteractive = 150 // one every mixedEvery, for 5 minutes
	mixedEvery       = 2 * time.Second
	mixedRPM         = 600
)

// mixedOutcome is what one run of the mixed scenario measured.
type mixedOutcome struct {
	batchDone  time.Duration   // when the last batch request returned
	batchOK    int             // batch requests answered 200
	waits      []time.Duration // each interactive attempt's wait in the limiter
	totals     []time.Duration // each interactive request's waits in the limiter, summed
	tooMany    int             // 429s the server answered
	arrivals   int
	interOK    int
	interWorst time.Duration // the longest an interactive request took, end to end
}

// limiterClock notes when an attempt entered Limit, so the transport under
// Limit can tell how long the attempt waited there.
type limiterClock struct {
	mu      sync.Mutex
	entered time.Time
	waits   []time.Duration
}

type clockKey struct{}

// limiterProbes returns the two probes: outer goes just outside Limit,
// inner just under it.
func limiterProbes() (outer, inner transport.Middleware) {
	outer = func(next http.RoundTripper) http.RoundTripper {
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			if c, ok := req.Context().Value(clockKey{}).(*limiterClock); ok {
				c.mu.Lock()
				c.entered = time.Now()
				c.mu.Unlock()
			}
			return next.RoundTrip(req)
		})
	}
	inner = func(next http.RoundTripper) http.RoundTripper {
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			if c, ok := req.Context().Value(clockKey{}).(*limiterClock); ok {
				c.mu.Lock()
				c.waits = append(c.waits, time.Since(c.entered))
				c.mu.Unlock()
			}
			return next.RoundTrip(req)
		})
	}
	return outer, inner
}

// lockedRand is a seeded source of retry jitter, safe for concurrent use,
// so that a run does not depend on the process's random numbers.
func lockedRand(seed uint64) func(int64) int64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(seed, seed))
	return func(n int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Int64N(n)
	}
}

// runMixed runs the scenario in the current bubble: the batch when batch is
// set, the interactive requests when interactive is set.
func runMixed(t *testing.T, batch, interactive bool, opts ...bucket.Option) mixedOutcome {
	srv := conformance.NewServer(conformance.Config{
		Seed:          8,
		Limits:        map[string]conformance.Limit{conformance.Chat: {RPM: mixedRPM}},
		Latency:       goalLatency,
		LatencyJitter: goalJitter,
	})
	b := bucket.New(bucket.PerMinute(mixedRPM), opts...)
	outer, inner := limiterProbes()
	rt := transport.Chain(inner(srv), retry.New(retry.WithRand(lockedRand(8))), outer, bucket.Limit(b))

	send := func(ctx context.Context, i int) (int, error) {
		resp, err := rt.RoundTrip(chatRequest(t, i).WithContext(ctx))
		if err != nil {
			return 0, err
		}
		transport.Drain(resp)
		return resp.StatusCode, nil
	}

	var o mixedOutcome
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	if batch {
		ctx := transport.WithPriority(context.Background(), transport.PriorityBatch)
		for i := range mixedBatch {
			wg.Go(func() {
				status, err := send(ctx, i)
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				if status == http.StatusOK {
					o.batchOK++
				}
				o.batchDone = max(o.batchDone, time.Since(start))
			})
		}
	}
	if interactive {
		wg.Go(func() {
			var each sync.WaitGroup
			for i := range mixedInteractive {
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * mixedEvery)))
				each.Go(func() {
					clock := &limiterClock{}
					ctx := context.WithValue(context.Background(), clockKey{}, clock)
					ctx = transport.WithPriority(ctx, transport.PriorityInteractive)
					asked := time.Now()
					status, err := send(ctx, mixedBatch+i)
					took := time.Since(asked)
					assert.NoError(t, err)
					clock.mu.Lock()
					defer clock.mu.Unlock()
					var total time.Duration
					for _, w := range clock.waits {
						total += w
					}
					mu.Lock()
					defer mu.Unlock()
					if status == http.StatusOK {
						o.interOK++
					}
					o.waits = append(o.waits, clock.waits...)
					o.totals = append(o.totals, total)
					o.interWorst = max(o.interWorst, took)
				})
			}
			each.Wait()
		})
	}
	wg.Wait()
	st := srv.Stats()
	o.tooMany, o.arrivals = st.TooMany, st.Arrivals
	return o
}

// percentile is the p-th percentile (0 to 100) of ds, nearest rank.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// TestMixedPriorities runs the mixed goal: the batch alone, then with the
// interactive requests, with priorities as they are by default, with a
// reserve for the interactive level, and in plain arrival order (aging
// share 1, the bucket as it was before priorities) for comparison.
func TestMixedPriorities(t *testing.T) {
	var alone, mixed, reserved, fifo mixedOutcome
	synctest.Test(t, func(t *testing.T) { alone = runMixed(t, true, false) })
	synctest.Test(t, func(t *testing.T) { mixed = runMixed(t, true, true) })
	synctest.Test(t, func(t *testing.T) {
		reserved = runMixed(t, true, true, bucket.WithReserve(transport.PriorityInteractive, 1, time.Minute))
	})
	synctest.Test(t, func(t *testing.T) { fifo = runMixed(t, true, true, bucket.WithAging(1)) })

	// The batch's fair time: alone, plus the interactive requests' share
	// of the rate (150 requests at 10 a second: 15s).
	share := time.Duration(float64(mixedInteractive) / (mixedRPM / 60.0) * float64(time.Second))
	fair := alone.batchDone + share
	t.Logf("batch alone: done at %v, %d 429s of %d arrivals; its fair time with the interactive share: %v",
		alone.batchDone.Round(time.Millisecond), alone.tooMany, alone.arrivals, fair.Round(time.Millisecond))
	for _, run := range []struct {
		name string
		o    mixedOutcome
	}{{"priorities", mixed}, {"priorities and a reserve of 1", reserved}, {"arrival order", fifo}} {
		o := run.o
		t.Logf("%s: batch done at %v (%.4f of its fair time), %d 429s of %d arrivals; interactive waits in the limiter: p50 %v, p99 %v, max %v per attempt, p99 %v per request; slowest interactive request end to end %v",
			run.name, o.batchDone.Round(time.Millisecond), o.batchDone.Seconds()/fair.Seconds(), o.tooMany, o.arrivals,
			percentile(o.waits, 50), percentile(o.waits, 99), percentile(o.waits, 100), percentile(o.totals, 99),
			o.interWorst.Round(time.Millisecond))
	}

	require.Equal(t, mixedBatch, alone.batchOK)
	for _, o := range []mixedOutcome{mixed, reserved} {
		require.Equal(t, mixedBatch, o.batchOK, "every batch request succeeds")
		require.Equal(t, mixedInteractive, o.interOK, "every interactive request succeeds")
		assert.LessOrEqual(t, percentile(o.waits, 99), 250*time.Millisecond, "interactive p99 wait per attempt")
		assert.LessOrEqual(t, percentile(o.totals, 99), 250*time.Millisecond, "interactive p99 wait per request")
		assert.LessOrEqual(t, o.batchDone.Seconds(), 1.10*fair.Seconds(), "the batch within 1.10 of its fair time")
		assert.LessOrEqual(t, o.tooMany, alone.tooMany, "no 429 more than the batch alone")
	}
	assert.Zero(t, percentile(reserved.waits, 99), "with a reserve, interactive requests do not wait")
	assert.Greater(t, percentile(fifo.waits, 50), time.Minute, "in arrival order they wait behind the batch")
}
