package conformance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// scnChat is a closed-loop chat scenario of n requests from callers
// against limits.
func scnChat(n, callers int, limits map[string]Limit) Scenario {
	return Scenario{
		Name:     "test",
		Server:   Config{Limits: limits},
		Workload: Workload{Model: ScenarioChatModel, Requests: n, Concurrency: callers},
	}
}

func scnNamed(t *testing.T, name string) Scenario {
	for _, s := range Scenarios() {
		if s.Name == name {
			return s
		}
	}
	require.FailNow(t, "no scenario "+name)
	return Scenario{}
}

func TestRunBareBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := Run(scnChat(30, 4, map[string]Limit{Chat: {RPM: 600}}), Stack{Name: "bare"})
		assert.Equal(t, "bare", o.Stack)
		assert.Equal(t, 30, o.Requests)
		assert.Equal(t, 10, o.Succeeded, "a bucket of 10 per second, starting full")
		assert.Equal(t, 20, o.Failed)
		assert.Zero(t, o.Hung)
		assert.Equal(t, 30, o.Arrivals)
		assert.Equal(t, 20, o.TooMany)
		assert.Equal(t, 10, o.Accepted)
		assert.Len(t, o.AcceptedAt, 10)
		require.Len(t, o.Calls, 30)
		ok := 0
		for _, c := range o.Calls {
			assert.Zero(t, c.Deadline, "no deadline but the horizon")
			if c.Status == http.StatusOK {
				ok++
			} else {
				assert.Equal(t, http.StatusTooManyRequests, c.Status)
			}
		}
		assert.Equal(t, 10, ok)
		assert.Zero(t, o.Wall, "no latency: every answer at once")
		assert.Equal(t, 2*time.Second, o.Least, "(30-10)/10 per second")
		assert.Len(t, scnChat(30, 4, map[string]Limit{Chat: {RPM: 600}}).Ideal(o.Start, o.Least), 30,
			"the oracle has all 30 through by then, the bare stack a third of them")
		assert.InDelta(t, 2.0/3, o.TooManyShare(), 1e-9)
		assert.False(t, o.Complete())
		assert.False(t, o.Deadlines)
	})
}

// The guide's limiter strands callers that queue when no later caller
// comes: they are counted hung, and the run lasts until the horizon.
func TestRunNaiveHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scnChat(70, 70, nil)
		s.Workload.Horizon = 10 * time.Minute
		st := Stack{Name: "naive at 60", Wrap: NaiveRetry(NewNaiveLimiter(60), nvJitter)}
		o := Run(s, st)
		assert.Equal(t, 60, o.Succeeded)
		assert.Equal(t, 10, o.Hung)
		assert.Zero(t, o.Failed)
		assert.Equal(t, 10*time.Minute, o.Wall)
		assert.Equal(t, 60, o.Arrivals, "the queued ones never reached the server")
	})
}

// Under a deadline shorter than the server's wait, the bare client fails
// at once, the guide's sleeps answer long after the deadline.
func TestRunDeadlineLateness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scnNamed(t, "deadline")
		bare := Run(s, Stack{Name: "bare"})
		assert.True(t, bare.Deadlines)
		assert.Equal(t, 1, bare.Succeeded)
		assert.Equal(t, 19, bare.Failed)
		assert.Zero(t, bare.Hung)
		assert.Zero(t, bare.MaxLate)

		naive := Run(s, Stack{Name: "naive", Wrap: NaiveRetry(NewNaiveLimiter(NaiveChatRPM), nvJitter)})
		assert.Equal(t, 1, naive.Succeeded)
		assert.Equal(t, 19, naive.Hung, "each got its answer only after its deadline")
		// The request at 1 s is told to come back in 29 s; it sleeps 29.5 s
		// and hears back at 30.5 s, 27.5 s past its deadline at 3 s.
		assert.Equal(t, 27500*time.Millisecond, naive.MaxLate)
		assert.Equal(t, 19*time.Second, naive.Least, "the oracle answers each request at once")

		require.Len(t, bare.Calls, 20)
		require.Len(t, naive.Calls, 20)
		for _, c := range bare.Calls {
			assert.Equal(t, c.Start, c.End, "the bare client hears back at once")
			assert.Equal(t, c.Start+2*time.Second, c.Deadline)
			assert.False(t, c.Hung)
		}
		hung := 0
		for _, c := range naive.Calls {
			if c.Hung {
				hung++
				// Retry-After is the reset rounded up to whole seconds.
				assert.GreaterOrEqual(t, c.End, 30500*time.Millisecond, "every sleeper wakes after the server's 30 s, plus its jitter")
				assert.Greater(t, c.End, c.Deadline, "long after its deadline")
				assert.Zero(t, c.Status)
			}
		}
		assert.Equal(t, 19, hung)
	})
}

func TestRunOpenLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Server: Config{Latency: 100 * time.Millisecond}, Workload: Workload{Model: ScenarioChatModel, Requests: 5, Every: time.Second}}
		o := Run(s, Stack{})
		assert.Equal(t, 5, o.Succeeded)
		assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}, o.AcceptedAt)
		assert.Equal(t, 4100*time.Millisecond, o.Wall)
		assert.True(t, o.Complete())
	})
}

func TestRunJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{Workload: Workload{Model: ScenarioEmbedModel, Texts: 100, BatchSize: 20}}
		plain := Run(s, Stack{Name: "plain"})
		assert.Equal(t, 100, plain.Texts)
		assert.Equal(t, 100, plain.Embedded)
		assert.NoError(t, plain.JobErr)
		assert.Equal(t, 5, plain.Requests)
		assert.Equal(t, 5, plain.Succeeded)
		assert.Zero(t, plain.Wall)
		assert.True(t, plain.Complete())

		naive := Run(s, Stack{Name: "naive", Wrap: NewNaive(1).Middleware(), Embed: NaiveEmbed})
		assert.Equal(t, 100, naive.Embedded)
		assert.Equal(t, 12*time.Second, naive.Wall, "the guide's 3 s sleeps")
	})
}

// A job cut off by the horizon counts the call in flight as hung.
func TestRunJobHorizon(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := Scenario{
			Server:   Config{Faults: []Fault{{Kind: FaultHang, From: 5 * time.Second}}},
			Workload: Workload{Model: ScenarioEmbedModel, Texts: 100, Horizon: time.Minute},
		}
		o := Run(s, Stack{Name: "naive", Wrap: NewNaive(1).Middleware(), Embed: NaiveEmbed})
		assert.Equal(t, 40, o.Embedded, "batches at 0 and 3 s; the one at 6 s hangs")
		assert.Error(t, o.JobErr)
		assert.Equal(t, 2, o.Succeeded)
		assert.Equal(t, 1, o.Hung)
		assert.Equal(t, time.Minute, o.Wall)
		assert.False(t, o.Complete())
	})
}

func TestScenarioLeast(t *testing.T) {
	chat := map[string]Limit{Chat: {RPM: 600}}
	overloaded := scnChat(20, 1, chat)
	overloaded.Server.Faults = []Fault{{Kind: FaultStatus, Status: 503, Model: ScenarioChatModel, Until: 3 * time.Minute}}
	otherModel := scnChat(30, 1, chat)
	otherModel.Server.Faults = []Fault{{Kind: FaultStatus, Status: 503, Model: ScenarioFallbackModel}}
	flaky := scnChat(10, 1, chat)
	flaky.Server.Faults = []Fault{{Kind: FaultStatus, Status: 500, Share: 0.5}}
	job := Scenario{Server: Config{Limits: map[string]Limit{Embeddings: {RPM: 300}}}, Workload: Workload{Texts: 1000, BatchSize: 20}}
	// Callers that bind: a pass holds its caller for the server's latency.
	slow := func(s Scenario) Scenario { s.Server.Latency = 500 * time.Millisecond; return s }
	callersFlaky := slow(scnChat(10, 2, nil))
	callersFlaky.Server.Faults = []Fault{{Kind: FaultStatus, Status: 500, Share: 0.5}}
	callersReset := slow(scnChat(10, 2, nil))
	callersReset.Server.Faults = []Fault{{Kind: FaultReset, Share: 0.5}}
	tests := []struct {
		name string
		s    Scenario
		want time.Duration
	}{
		{"per second: (N-B)/R", scnChat(30, 1, chat), 2 * time.Second},
		{"per second below 1/s: a bucket of 1", scnChat(5, 1, map[string]Limit{Chat: {RPM: 30}}), 8 * time.Second},
		{"minute windows", scnChat(1300, 1, map[string]Limit{Chat: {RPM: 600, Window: time.Minute}}), 2 * time.Minute},
		{"dynamic at its base", scnChat(100, 1, map[string]Limit{Chat: {Dynamic: true, Base: 60, Cap: 600}}), 99 * time.Second},
		{"unlimited", scnChat(100, 1, nil), 0},
		{"a model down for 3 minutes", overloaded, 181 * time.Second},
		{"another model down", otherModel, 2 * time.Second},
		// About twice the requests: under seed 0 the server's draws fail
		// 11 of the 21 passes the ten requests take, (21-10)/10.
		{"half the answers fail: the passes the draws fail, again", flaky, 1100 * time.Millisecond},
		{"a job's batches", job, 9 * time.Second},
		{"open loop with deadlines", scnNamed(t, "deadline"), 19 * time.Second},
		{"open loop faster than nginx: each at the first admission after its start", Scenario{
			Server:   Config{Limits: map[string]Limit{Chat: {RPM: 120, Algorithm: LeakyBucket, Burst: 1}}},
			Workload: Workload{Model: ScenarioChatModel, Requests: 20, Every: 250 * time.Millisecond},
		}, 9500 * time.Millisecond},
		{"open loop slower than a sliding log: each at its start", Scenario{
			Server:   Config{Limits: map[string]Limit{Chat: {RPM: 60, Algorithm: SlidingLog, Window: 10 * time.Second}}},
			Workload: Workload{Model: ScenarioChatModel, Requests: 20, Every: 2 * time.Second},
		}, 38 * time.Second},
		{"tokens bind: 22 a request, 110 a second, 5 at once: (105-5)/5", scnChat(105, 1, map[string]Limit{Chat: {RPM: 6000, TPM: 6600}}), 20 * time.Second},
		{"unlimited, 2 callers held 500 ms a pass: 10 requests in 5 rounds", slow(scnChat(10, 2, nil)), 2 * time.Second},
		{"a bucket of 10 at 10 a second, 4 callers bind: 40 in 10 rounds", slow(scnChat(40, 4, chat)), 4500 * time.Millisecond},
		{"64 callers, the bucket binds: as with no latency", slow(scnChat(30, 64, chat)), 2 * time.Second},
		{"a failed pass holds its caller too: 21 passes (see above) in 11 rounds", callersFlaky, 5 * time.Second},
		{"a pass reset holds its caller for no time: the 10 that pass, in 5 rounds", callersReset, 2 * time.Second},
	}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.s.Least(start), tt.name)
	}
}

// The oracle is written from Limit's documentation, apart from the
// server's code. Driving the real server, it must be admitted exactly
// when it predicts, every time (no 429), and not a millisecond sooner: a
// probe sent 1 ms before each admission is refused.
func TestIdealMatchesServer(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		n     int
	}{
		{"per second", Limit{RPM: 600}, 50},
		{"per second, below one a second", Limit{RPM: 40}, 10},
		{"bucket, a burst of 25", Limit{RPM: 600, Algorithm: TokenBucket, Burst: 25}, 60},
		{"bucket, no burst, a rate not a divisor of a second", Limit{RPM: 420, Algorithm: TokenBucket, Burst: 1}, 40},
		{"nginx, no burst", Limit{RPM: 600, Algorithm: LeakyBucket, Burst: 1}, 40},
		{"nginx, burst=10 nodelay", Limit{RPM: 600, Algorithm: LeakyBucket, Burst: 11}, 60},
		{"nginx, 3 r/s: 334 ms apart", Limit{RPM: 180, Algorithm: LeakyBucket, Burst: 1}, 20},
		{"nginx, 90 r/m", Limit{RPM: 90, Algorithm: LeakyBucket}, 20},
		{"minute windows", Limit{RPM: 120, Window: time.Minute}, 300},
		{"fixed 10 s windows on the clock", Limit{RPM: 60, Algorithm: FixedWindow, Window: 10 * time.Second}, 35},
		{"fixed 10 s windows from the first request", Limit{RPM: 60, Algorithm: FixedWindow, Window: 10 * time.Second, FromFirstRequest: true}, 35},
		{"sliding 10 s log", Limit{RPM: 60, Algorithm: SlidingLog, Window: 10 * time.Second}, 35},
		{"tokens bind, per second", Limit{RPM: 600, TPM: 660}, 40},
		{"tokens bind, nginx", Limit{RPM: 600, TPM: 660, Algorithm: LeakyBucket, TokenBurst: 50}, 40},
		{"tokens bind, sliding log", Limit{RPM: 600, TPM: 220, Algorithm: SlidingLog, Window: 10 * time.Second}, 40},
		{"tokens bind, fixed windows", Limit{RPM: 600, TPM: 220, Algorithm: FixedWindow, Window: 10 * time.Second, FromFirstRequest: true}, 40},
		{"requests bind, tokens count", Limit{RPM: 60, TPM: 6000, Algorithm: SlidingLog, Window: 5 * time.Second}, 30},
		{"dynamic, growing past its base", Limit{Dynamic: true, Base: 60, Cap: 600}, 2000},
		{"dynamic over the minutes in use", Limit{Dynamic: true, Base: 60, Cap: 600, Span: SpanInUse}, 2000},
		{"dynamic over the minutes in use, nginx", Limit{Dynamic: true, Base: 60, Cap: 300, Span: SpanInUse, Algorithm: LeakyBucket}, 1000},
		{"dynamic, sliding log", Limit{Dynamic: true, Base: 60, Cap: 600, Span: SpanInUse, Algorithm: SlidingLog, Window: 10 * time.Second}, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				s := scnChat(tt.n, 1, map[string]Limit{Chat: tt.limit})
				ideal := s.closedIdeal(start, idealGuard, float64(tt.n))
				require.Len(t, ideal, tt.n)
				srv := NewServer(s.Server)
				send := func(i int) int {
					resp, err := srv.RoundTrip(s.Workload.request(t.Context(), i))
					require.NoError(t, err)
					nvClose(resp)
					return resp.StatusCode
				}
				probed := 0
				for i, a := range ideal {
					if i > 0 && a.At-time.Millisecond > ideal[i-1].At {
						time.Sleep(time.Until(start.Add(a.At - time.Millisecond)))
						require.Equal(t, http.StatusTooManyRequests, send(i), "request %d, 1 ms before the oracle's %v", i, a.At)
						probed++
					}
					time.Sleep(time.Until(start.Add(a.At)))
					require.Equal(t, http.StatusOK, send(i), "request %d at the oracle's %v", i, a.At)
				}
				st := srv.Stats()
				assert.Equal(t, tt.n, st.OK)
				assert.Equal(t, probed, st.TooMany, "only the probes were refused")
				assert.Positive(t, probed)
				if tt.limit.Dynamic {
					assert.Less(t, ideal[tt.n-1].At, time.Duration(tt.n-1)*time.Second, "the limit grew past its base")
				}
			})
		})
	}
}

// Under Together's dynamic limit the oracle's limit grows because it uses
// it; averaged over the minutes in use rather than the hour, it grows
// sooner.
func TestIdealDynamicSpans(t *testing.T) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	hour := scnChat(6000, 1, map[string]Limit{Chat: {Dynamic: true, Base: 60, Cap: 600}})
	inUse := scnChat(6000, 1, map[string]Limit{Chat: {Dynamic: true, Base: 60, Cap: 600, Span: SpanInUse}})
	at := func(s Scenario, d time.Duration) int { return len(s.Ideal(start, d)) }
	assert.InDelta(t, 30*60, at(hour, 30*time.Minute), 10, "half an hour at the base: 2 × 1,800 an hour is 60 a minute")
	assert.Greater(t, at(inUse, 5*time.Minute), 5*60+100, "past the base within minutes")
	assert.Greater(t, at(hour, time.Hour), at(hour, 30*time.Minute)*2, "the second half hour grows")
	hourLeast, inUseLeast := hour.Least(start), inUse.Least(start)
	t.Logf("6,000 requests: %v over the past hour, %v over the minutes in use", hourLeast, inUseLeast)
	assert.Less(t, inUseLeast, hourLeast)
	assert.Greater(t, hourLeast, 45*time.Minute, "a dynamic limit takes its time to grow")
	assert.Greater(t, inUseLeast, 10*time.Minute, "never above the cap: 6,000 at 600 a minute take 10")
}

func TestScenariosAreWellFormed(t *testing.T) {
	names := map[string]bool{}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, d := range []Dialect{DialectOpenAI, DialectAnthropic} {
		for _, s := range ScenariosFor(d) {
			if s.Goal.Ratio > 0 {
				assert.Positive(t, s.Least(start), "%s under %v: a time goal needs an oracle's time", s.Name, d)
			}
		}
	}
	for _, s := range Scenarios() {
		assert.False(t, names[s.Name], "duplicate name %s", s.Name)
		names[s.Name] = true
		assert.NotEmpty(t, s.Title)
		assert.NotEmpty(t, s.About)
		assert.Positive(t, s.Workload.demand(), s.Name)
		assert.Positive(t, s.Least(start), "%s: a limit to measure against", s.Name)
		assert.Contains(t, DefaultModels(), s.Workload.Model, s.Name)
	}
	assert.GreaterOrEqual(t, len(names), 8)
}

// Every scenario runs to its end with the bare stack, in virtual time.
func TestScenariosRunBare(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every scenario")
	}
	for _, s := range Scenarios() {
		t.Run(s.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := Run(s, Stack{Name: "bare"})
				assert.Equal(t, o.Requests, o.Succeeded+o.Failed+o.Hung)
				assert.Positive(t, o.Arrivals)
				assertNotPastOracle(t, s, o)
			})
		})
	}
}

// assertNotPastOracle checks that no stack beats the oracle: by the time
// of each request the server accepted, the oracle had at least as many
// admitted.
func assertNotPastOracle(t *testing.T, s Scenario, o Outcome) {
	t.Helper()
	if len(o.AcceptedAt) == 0 {
		return
	}
	ideal := s.Ideal(o.Start, o.AcceptedAt[len(o.AcceptedAt)-1])
	for i, at := range o.AcceptedAt {
		n := sort.Search(len(ideal), func(j int) bool { return ideal[j].At > at })
		if !assert.GreaterOrEqual(t, n, i+1, "accepted %d by %v, the oracle %d", i+1, at, n) {
			return
		}
	}
}

func ExampleRun() {
	// Run belongs inside a testing/synctest bubble, where the scenario's
	// waits pass in virtual time; this scenario has none, so it runs as
	// well in real time.
	s := Scenario{
		Name:     "three",
		Workload: Workload{Model: ScenarioChatModel, Requests: 3, Concurrency: 3},
	}
	o := Run(s, Stack{Name: "bare"})
	fmt.Printf("%s: %d of %d succeeded, %d arrivals\n", o.Stack, o.Succeeded, o.Requests, o.Arrivals)
	// Output:
	// bare: 3 of 3 succeeded, 3 arrivals
}

// The scenarios whose faults hit a share of the requests ask that every
// request succeed. That is within reach of a client with the usual four
// retries only if no request is hit on each of its first five passes:
// 1,000 requests hit 10% of the time hold such a request under about 1 seed
// in 100 (1,000 × 0.1⁵; seed 31 is one). The draws depend on the seed and
// the requests alone, so this holds for every stack that sends the
// workload's requests, whatever their order.
func TestScenarioFaultsLeaveEveryRequestSavable(t *testing.T) {
	const passes = 5 // the first attempt and four retries
	var sets []Scenario
	for _, d := range []Dialect{DialectTogether, DialectOpenAI, DialectAnthropic} {
		sets = append(sets, ScenariosFor(d)...)
	}
	checked := 0
	for _, s := range sets {
		partial := false
		for _, f := range s.Server.Faults {
			partial = partial || (f.Share > 0 && f.Share < 1)
		}
		if !partial || s.Workload.Texts > 0 {
			continue
		}
		checked++
		cfg := s.Server
		cfg.Limits = nil // the limits decide when, not whether
		t.Run(s.Name+"/"+cfg.Dialect.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := NewServer(cfg)
				for i := range s.Workload.Requests {
					ok := false
					for range passes {
						resp, err := srv.RoundTrip(s.Workload.request(t.Context(), i))
						if err == nil {
							_ = resp.Body.Close()
							ok = resp.StatusCode < 300
						}
						if ok {
							break
						}
					}
					assert.True(t, ok, "seed %d: request %d is hit on each of its first %d passes", cfg.Seed, i, passes)
				}
			})
		})
	}
	assert.Equal(t, 3, checked, "flaky-5xx in each dialect")
}

// askModels is a stack that, after every answer, asks the server for its
// models nine times: requests to an endpoint with no limit, which change
// nothing of the workload's own.
func askModels(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		for range 9 {
			r, _ := http.NewRequestWithContext(req.Context(), http.MethodGet, ScenarioBaseURL+"/models", nil)
			if m, err := next.RoundTrip(r); err == nil {
				transport.Drain(m)
			}
		}
		return resp, err
	})
}

// The share of 429s is of the workload's arrivals: requests a stack adds
// to another endpoint do not thin it out, nor count as admissions.
func TestRunCountsTheWorkloadsArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := scnChat(30, 4, map[string]Limit{Chat: {RPM: 600}})
		bare := Run(s, Stack{Name: "bare"})
		padded := Run(s, Stack{Name: "padded", Wrap: askModels})
		require.Equal(t, bare.TooMany, padded.TooMany, "the same 429s")
		assert.Equal(t, bare.Arrivals, padded.Arrivals)
		assert.Equal(t, bare.TooManyShare(), padded.TooManyShare())
		assert.Equal(t, bare.AcceptedAt, padded.AcceptedAt)
	})
}

// refuseAll fails every request at once without sending it.
func refuseAll(http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errors.New("refused")
	})
}

// The deadline scenario's goal fails a client that does nothing: one that
// sends every request whatever the 429s said, and one that sends none,
// though the oracle gets the first through.
func TestDeadlineGoalFailsDoingNothing(t *testing.T) {
	for _, d := range []Dialect{DialectTogether, DialectOpenAI, DialectAnthropic} {
		for _, sc := range ScenariosFor(d) {
			if sc.Name != "deadline" {
				continue
			}
			for _, st := range []Stack{{Name: "bare"}, {Name: "refuses", Wrap: refuseAll}} {
				t.Run(d.String()+"/"+st.Name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						o := Run(sc, st)
						assert.NotEmpty(t, sc.Goal.Misses(o), "%v", o)
					})
				})
			}
		}
	}
}

// The oracle is not beaten: against a model overloaded for minutes, a
// client whose only skill is to send a 503's request to the other model
// the scenario names, behind a limiter at the key's rate, takes no less
// than the oracle's time.
func TestOracleNotBeatenByAFallback(t *testing.T) {
	for _, d := range []Dialect{DialectTogether, DialectOpenAI, DialectAnthropic} {
		for _, sc := range ScenariosFor(d) {
			if sc.Name != "overloaded" {
				continue
			}
			t.Run(d.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					rpm := sc.Server.Limits[sc.Workload.endpoint()].RPM
					o := Run(sc, Stack{Name: "fallback", Wrap: func(next http.RoundTripper) http.RoundTripper {
						return transport.Chain(next,
							transport.Fallback(map[string][]string{ScenarioChatModel: {ScenarioFallbackModel}}),
							bucket.Limit(bucket.New(bucket.PerMinute(rpm))))
					}})
					require.True(t, o.Complete(), "%v", o)
					assert.GreaterOrEqual(t, o.Wall, o.Least, "%v", o)
				})
			})
		}
	}
}

// The oracle is not beaten where faults hit a share of the requests: a
// client that paces itself at the key's rate and retries each 5xx at once
// takes no less than the oracle's time.
func TestOracleNotBeatenUnderFlaky5xx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := scnNamed(t, "flaky-5xx")
		o := Run(sc, Stack{Name: "paced retry", Wrap: func(next http.RoundTripper) http.RoundTripper {
			return transport.Chain(next, retrying, bucket.Limit(bucket.New(bucket.PerMinute(600), bucket.WithBurst(10))))
		}})
		require.True(t, o.Complete(), "%v", o)
		assert.GreaterOrEqual(t, o.Wall, o.Least, "%v", o)
		adm := sc.Ideal(o.Start, o.Least)
		assert.Len(t, adm, o.Arrivals, "the oracle's passes meet the faults the stack's met: one admission per arrival")
		u, err := url.Parse(ScenarioBaseURL)
		require.NoError(t, err)
		assert.Equal(t, u.Path, scenarioBasePath)
	})
}

// patient retries every 5xx a second later until it succeeds: no request
// fails, however long the model is down.
func patient(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(r)
			if err != nil || resp.StatusCode < 500 || !replay.CanReplay() {
				return resp, err
			}
			transport.Drain(resp)
			if err := transport.Sleep(req.Context(), time.Second); err != nil {
				return nil, err
			}
		}
	})
}

// The overloaded scenario's goal grades time: a client that waits the
// model's three minutes out, losing nothing, takes four times what the
// oracle does by the other model, and misses it.
func TestOverloadedGoalGradesTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := scnNamed(t, "overloaded")
		o := Run(sc, Stack{Name: "patient", Wrap: func(next http.RoundTripper) http.RoundTripper {
			return transport.Chain(next, patient, bucket.Limit(bucket.New(bucket.PerMinute(600))))
		}})
		require.True(t, o.Complete(), "%v", o)
		assert.NotEmpty(t, sc.Goal.Misses(o), "%v", o)
	})
}

// A job's texts count as embedded when the server embedded them, not
// because the stack's driver says so: a driver that sends nothing and
// reports every text done, or hands back empty vectors for batches it
// dropped, embeds nothing.
func TestRunCountsTextsTheServerEmbedded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := scnNamed(t, "embed-job")
		claims := func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
			return len(texts), nil
		}
		o := Run(sc, Stack{Name: "claims", Embed: claims})
		assert.Zero(t, o.Embedded, "%v", o)
		assert.NotEmpty(t, sc.Goal.Misses(o), "%v", o)

		half := func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
			n, err := EmbedSequential(0)(ctx, client, baseURL, model, texts[:len(texts)/2])
			return n + len(texts) - len(texts)/2, err
		}
		paced := func(next http.RoundTripper) http.RoundTripper {
			return transport.Chain(next, retrying, bucket.Limit(bucket.New(bucket.PerMinute(300))))
		}
		o = Run(sc, Stack{Name: "half", Wrap: paced, Embed: half})
		assert.Equal(t, sc.Workload.Texts/2, o.Embedded, "%v", o)

		o = Run(sc, Stack{Name: "sequential", Wrap: paced})
		assert.Equal(t, sc.Workload.Texts, o.Embedded, "%v", o)
	})
}
