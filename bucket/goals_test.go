package bucket_test

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// goal is one of issue #8's scenarios: a client told one rate against a
// simulated provider that enforces another.
type goal struct {
	name     string
	limit    conformance.Limit
	headers  conformance.Headers
	told     bucket.Rate
	requests int
	workers  int

	maxTooMany float64 // most 429s, as a share of arrivals
	maxSlower  float64 // most time over the oracle's, as a share; 0: not checked
}

// outcome is what a scenario measured.
type outcome struct {
	ok, tooMany, arrivals int
	elapsed, least        time.Duration
}

const (
	goalModel   = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	goalLatency = 400 * time.Millisecond
	goalJitter  = 400 * time.Millisecond
)

// goals are issue #8's scenarios, with its thresholds.
var goals = []goal{
	{
		name:     "600 RPM enforced per second",
		limit:    conformance.Limit{RPM: 600},
		told:     bucket.PerMinute(600),
		requests: 3000, workers: 64,
		maxTooMany: 0.005, maxSlower: 0.02,
	},
	{
		name:     "told 600 RPM, the key has 60",
		limit:    conformance.Limit{RPM: 60},
		told:     bucket.PerMinute(600),
		requests: 600, workers: 64,
		maxTooMany: 0.05, maxSlower: 0.15,
	},
	{
		name:     "Together's dynamic limit, 60 to 600 RPM",
		limit:    conformance.Limit{Dynamic: true, Base: 60, Cap: 600},
		told:     bucket.PerMinute(600),
		requests: 6000, workers: 64,
		maxTooMany: 0.02, maxSlower: 0.10, // the oracle's limit grows as it uses it
	},
	{
		name:     "one-minute windows, remaining/reset on every answer",
		limit:    conformance.Limit{RPM: 600, Window: time.Minute},
		headers:  conformance.HeaderEveryAnswer,
		told:     bucket.PerMinute(600),
		requests: 3000, workers: 64,
		maxTooMany: 0.01, maxSlower: 0.10,
	},
}

// TestGoals runs issue #8's scenarios with answers taking 400 to 800ms.
func TestGoals(t *testing.T) {
	for _, g := range goals {
		t.Run(g.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { checkGoal(t, g, runGoal(t, g)) })
		})
	}
}

// TestGoalsAtOtherLatencies runs them again with answers at once, and
// across a network: the thresholds hold whatever the latency, as long as
// it does not make the 64 workers the bottleneck.
func TestGoalsAtOtherLatencies(t *testing.T) {
	for _, lat := range []struct{ latency, jitter time.Duration }{
		{0, 0},
		{50 * time.Millisecond, 100 * time.Millisecond},
	} {
		for _, g := range goals {
			t.Run(fmt.Sprintf("%s/%v+%v", g.name, lat.latency, lat.jitter), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					checkGoal(t, g, runGoalWith(t, g, 3, lat.latency, lat.jitter))
				})
			})
		}
	}
}

// TestScenarios runs cases beyond the goals: the rate headers of
// other providers, and clients told the wrong limit or none.
func TestScenarios(t *testing.T) {
	for _, g := range []goal{
		{
			name:     "600 RPM per second, Together's headers on every answer",
			limit:    conformance.Limit{RPM: 600},
			headers:  conformance.HeaderEveryAnswer,
			told:     bucket.PerMinute(600),
			requests: 3000, workers: 64,
			maxTooMany: 0.005, maxSlower: 0.02,
		},
		{
			name:     "600 RPM per second, OpenAI's headers",
			limit:    conformance.Limit{RPM: 600},
			headers:  conformance.HeaderOpenAI,
			told:     bucket.PerMinute(600),
			requests: 3000, workers: 64,
			maxTooMany: 0.005, maxSlower: 0.02,
		},
		{
			name:     "told 600 RPM, the key has 60, Anthropic's headers",
			limit:    conformance.Limit{RPM: 60},
			headers:  conformance.HeaderAnthropic,
			told:     bucket.PerMinute(600),
			requests: 600, workers: 64,
			maxTooMany: 0.05, maxSlower: 0.15,
		},
		{
			name:     "told 600 RPM, the key has 60, Retry-After in whole seconds",
			limit:    conformance.Limit{RPM: 60},
			headers:  conformance.HeaderRetryAfter,
			told:     bucket.PerMinute(600),
			requests: 600, workers: 64,
			// Answers taking 400 to 800 ms hold many requests in flight
			// when the limit is found; the controller measures the limit
			// between 429s rather than guessing it, and pays for it here:
			// +15.8% (v0.1's guesses: +7.5%), where the model matrix,
			// at 100 to 300 ms, gains.
			maxTooMany: 0.05, maxSlower: 0.17,
		},
		{
			name:     "told 1000 RPM, the key has 600",
			limit:    conformance.Limit{RPM: 600},
			told:     bucket.PerMinute(1000),
			requests: 3000, workers: 64,
			// The requests in flight when a probe is refused are refused
			// too: 0.63% (v0.1: 0.20%).
			maxTooMany: 0.008, maxSlower: 0.02,
		},
		{
			name:     "told nothing, the key has 600 RPM (slow start)",
			limit:    conformance.Limit{RPM: 600},
			told:     bucket.Rate{},
			requests: 3000, workers: 64,
			// As above: 0.60-1.02% and +1.4-3.9% over 60 runs (v0.1:
			// 0.37% and +1.1%). The 64 workers woken at one virtual
			// instant run in an order that varies run to run, and -race
			// varies it more: 1% was passed in 3 of 28 runs under -race.
			maxTooMany: 0.015, maxSlower: 0.05,
		},
		{
			// Without headers a window looks like any limit: the bucket
			// paces at the rate it was told and is never refused, but it
			// cannot spend a window in a burst.
			name:     "one-minute windows, no headers",
			limit:    conformance.Limit{RPM: 600, Window: time.Minute},
			told:     bucket.PerMinute(600),
			requests: 3000, workers: 64,
			maxTooMany: 0.001, maxSlower: 0.30,
		},
	} {
		t.Run(g.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { checkGoal(t, g, runGoal(t, g)) })
		})
	}
}

func checkGoal(t *testing.T, g goal, o outcome) {
	require.Equal(t, g.requests, o.ok, "every request succeeds")
	tooMany := float64(o.tooMany) / float64(o.arrivals)
	slower := o.elapsed.Seconds()/o.least.Seconds() - 1
	t.Logf("%d requests, %d arrivals, %d 429s (%.2f%%), %v against the oracle's %v (%+.2f%%)",
		g.requests, o.arrivals, o.tooMany, 100*tooMany, o.elapsed.Round(time.Millisecond), o.least.Round(time.Millisecond), 100*slower)
	assert.LessOrEqual(t, tooMany, g.maxTooMany, "share of arrivals refused with 429")
	if g.maxSlower > 0 {
		assert.LessOrEqual(t, slower, g.maxSlower, "time over the oracle's")
	}
}

// runGoal submits g.requests chat requests at once from g.workers
// goroutines through Limit, each retried after a 429 (standing in for the
// retry decorator, which sits outside Limit and waits for its pause).
func runGoal(t *testing.T, g goal) outcome {
	return runGoalWith(t, g, 8, goalLatency, goalJitter)
}

func runGoalWith(t *testing.T, g goal, seed int64, latency, jitter time.Duration) outcome {
	srv := conformance.NewServer(conformance.Config{
		Seed:          seed,
		Limits:        map[string]conformance.Limit{conformance.Chat: g.limit},
		Headers:       g.headers,
		Latency:       latency,
		LatencyJitter: jitter,
	})
	b := bucket.New(g.told)
	rt := bucket.Limit(b)(srv)

	jobs := make(chan int, g.requests)
	for i := range g.requests {
		jobs <- i
	}
	close(jobs)
	var ok atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range g.workers {
		wg.Go(func() {
			for i := range jobs {
				for attempt := 1; attempt <= 100; attempt++ {
					resp, err := rt.RoundTrip(chatRequest(t, i))
					if !assert.NoError(t, err) {
						return
					}
					transport.Drain(resp)
					if resp.StatusCode == http.StatusTooManyRequests {
						continue
					}
					if assert.Equal(t, http.StatusOK, resp.StatusCode) {
						ok.Add(1)
					}
					break
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := srv.Stats()
	// The oracle: a client that knows the server's state, sends each
	// request the moment the server would admit it, and waits for its last
	// answer's latency.
	oracle := conformance.Scenario{
		Server:   conformance.Config{Limits: map[string]conformance.Limit{conformance.Chat: g.limit}},
		Workload: conformance.Workload{Model: goalModel, Requests: g.requests},
	}
	return outcome{ok: int(ok.Load()), tooMany: st.TooMany, arrivals: st.Arrivals, elapsed: elapsed,
		least: oracle.Least(start) + latency}
}

func chatRequest(t *testing.T, i int) *http.Request {
	body := fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"request %d"}]}`, goalModel, i)
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer key")
	req.Header.Set("Content-Type", "application/json")
	return req
}
