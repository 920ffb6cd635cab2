package conformance

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		assert.InDelta(t, 30, o.Allowed, 1e-9, "over the least possible time, when the run was shorter")
		assert.InDelta(t, 1.0/3, o.CapacityUsed(), 1e-9)
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
		assert.Equal(t, 19*time.Second, naive.Least, "an ideal client answers each request at once")

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
		{"half the answers fail: twice the requests", flaky, time.Second},
		{"a job's batches", job, 9 * time.Second},
		{"open loop with deadlines", scnNamed(t, "deadline"), 19 * time.Second},
	}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.s.Least(start), tt.name)
	}
}

// The ideal client is written from Limit's documentation; a greedy client
// that waits exactly as long as the server's x-ratelimit-reset says must
// be accepted at the same moments.
func TestIdealMatchesServer(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		n     int
	}{
		{"per second", Limit{RPM: 600}, 50},
		{"per second, below one a second", Limit{RPM: 40}, 10},
		{"minute windows", Limit{RPM: 120, Window: time.Minute}, 300},
		{"dynamic, growing past its base", Limit{Dynamic: true, Base: 60, Cap: 600}, 2000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				s := scnChat(tt.n, 1, map[string]Limit{Chat: tt.limit})
				srv := NewServer(s.Server)
				var got []time.Duration
				for len(got) < tt.n {
					resp, err := nvChat(t.Context(), srv, ScenarioChatModel)
					require.NoError(t, err)
					nvClose(resp)
					if resp.StatusCode == http.StatusOK {
						got = append(got, time.Since(start))
						continue
					}
					require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
					secs, err := strconv.ParseFloat(resp.Header.Get("X-Ratelimit-Reset"), 64)
					require.NoError(t, err)
					time.Sleep(time.Duration(secs * float64(time.Second)))
				}
				ideal := s.closedIdeal(start, idealGuard, float64(tt.n))
				require.Len(t, ideal, tt.n)
				for i, a := range ideal {
					// The server rounds its resets up to the millisecond;
					// under a dynamic limit, whose rate changes between a
					// 429 and the retry, the rounding can add up a little.
					require.InDelta(t, got[i], a.At, float64(5*time.Millisecond), "admission %d", i)
				}
				if tt.limit.Dynamic {
					assert.Less(t, ideal[tt.n-1].At, time.Duration(tt.n-1)*time.Second, "the limit grew past its base")
				}
			})
		})
	}
}

func TestScenariosAreWellFormed(t *testing.T) {
	names := map[string]bool{}
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
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
				assert.LessOrEqual(t, o.CapacityUsed(), 1.0+1e-9, "no stack beats the ideal client")
			})
		})
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
