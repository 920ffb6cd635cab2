package conformance

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestMatrixIsWellFormed(t *testing.T) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	names := map[string]bool{}
	algorithms := map[Algorithm]bool{}
	var dialects []Headers
	for _, c := range Matrix() {
		assert.False(t, names[c.Name], "duplicate name %s", c.Name)
		names[c.Name] = true
		assert.NotEmpty(t, c.Title)
		assert.Equal(t, "matrix-"+c.Name, c.Scenario.Name)
		w := c.Scenario.Workload
		assert.Equal(t, Chat, w.endpoint(), c.Name)
		assert.Equal(t, 64, w.Concurrency, c.Name)
		assert.Contains(t, DefaultModels(), w.Model)
		lim, ok := c.Scenario.Server.Limits[Chat]
		require.True(t, ok, c.Name)
		algorithms[lim.resolved()] = true
		dialects = append(dialects, c.Scenario.Server.Headers)
		assert.Positive(t, c.Goal.Ratio, c.Name)
		assert.Positive(t, c.Goal.TooMany, c.Name)

		least := c.Scenario.Least(start)
		if lim.Dynamic {
			assert.Greater(t, least, 10*time.Minute, "%s: a dynamic limit takes its time", c.Name)
		} else {
			assert.Greater(t, least, 2*time.Minute, "%s: minutes of virtual time", c.Name)
			assert.Less(t, least, 15*time.Minute, "%s: not hours", c.Name)
		}
		for _, f := range Tellings() {
			told := c.Told(f)
			assert.Equal(t, Chat, told.Endpoint)
			assert.Equal(t, f > 0, told.Known())
			assert.InDelta(t, TrueRPM(lim)*f, told.RPM, 1e-9, c.Name)
			assert.InDelta(t, lim.TPM*f, told.TPM, 1e-9, c.Name)
		}
	}
	for _, a := range []Algorithm{TokenBucket, LeakyBucket, SlidingLog, FixedWindow} {
		assert.True(t, algorithms[a], "no case of %v", a)
	}
	for _, h := range []Headers{0, HeaderNoReset, HeaderNoReset | HeaderRetryAfter, HeaderEveryAnswer, HeaderOpenAI, HeaderAnthropic} {
		assert.Contains(t, dialects, h)
	}
	for _, h := range []Headers{HeaderDraft6, HeaderDraft7, HeaderDraft8, HeaderLegacy} {
		assert.Contains(t, dialects, h|HeaderNoReset|HeaderRetryAfter)
	}
	assert.Equal(t, []float64{1, 2, 0}, Tellings())
}

func TestTold(t *testing.T) {
	dyn := Limit{Dynamic: true, Base: 60, Cap: 600}
	assert.Equal(t, 600.0, TrueRPM(dyn), "a dynamic limit is told by its cap")
	assert.Equal(t, 60.0, TrueRPM(Limit{Dynamic: true, Base: 60}), "or its base, uncapped")
	assert.Equal(t, 600.0, TrueRPM(Limit{RPM: 600, Algorithm: FixedWindow, Window: 10 * time.Second}), "a window per minute")

	c := MatrixCase{Scenario: Scenario{
		Server:   Config{Limits: map[string]Limit{Chat: {RPM: 600, TPM: 6600}}},
		Workload: Workload{Requests: 1},
	}}
	c.Name = "tokens"
	assert.Equal(t, Told{Case: "tokens", Factor: 2, Endpoint: Chat, RPM: 1200, TPM: 13200}, c.Told(2))
	assert.Equal(t, "2× the limit (1200 RPM, 13200 TPM)", c.Told(2).String())
	assert.Equal(t, "the limit (600 RPM, 6600 TPM)", c.Told(1).String())
	assert.Equal(t, Told{Case: "tokens", Endpoint: Chat}, c.Told(0))
	assert.Equal(t, "nothing", c.Told(0).String())
}

// oracleStack sends each request at the oracle's next admission: the
// client that knows the server's state, as a stack.
func oracleStack(s Scenario) Stack {
	return Stack{Name: "oracle", Wrap: func(next http.RoundTripper) http.RoundTripper {
		start := time.Now()
		adm := s.closedIdeal(start, idealGuard, float64(s.Workload.demand()))
		var mu sync.Mutex
		slot := 0
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			at := adm[slot].At
			slot++
			mu.Unlock()
			if err := transport.Sleep(req.Context(), time.Until(start.Add(at))); err != nil {
				return nil, err
			}
			return next.RoundTrip(req)
		})
	}}
}

// The oracle, run as a stack against the real server in every case of the
// matrix, is never refused and takes its own time plus one answer's
// latency: the yardstick is one the server agrees with.
func TestMatrixOracleAgreesWithServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every case of the matrix")
	}
	// The oracle always has a request ready: enough callers that none of
	// its slots waits for one to come back (64 callers take a couple of
	// seconds to send a window's 600).
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range Matrix() {
		s := c.Scenario
		s.Workload.Concurrency = busiest(s.closedIdeal(start, idealGuard, float64(s.Workload.demand())),
			s.Server.Latency+s.Server.LatencyJitter) + 1
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				o, cfg := Run(s, oracleStack(s)), s.Server
				assert.True(t, o.Complete(), "%d of %d", o.Succeeded, o.Requests)
				assert.Zero(t, o.TooMany)
				assert.GreaterOrEqual(t, o.Wall, o.Least+cfg.Latency)
				assert.LessOrEqual(t, o.Wall, o.Least+cfg.Latency+cfg.LatencyJitter)
				assert.True(t, MatrixResult{Case: c, Outcome: o}.Met(), "the oracle meets every goal (×%.4f)", o.Ratio())
			})
		})
	}
}

// busiest is the most admissions within any span of d.
func busiest(adm []Admission, d time.Duration) int {
	most, from := 0, 0
	for i, a := range adm {
		for adm[from].At+d < a.At {
			from++
		}
		most = max(most, i-from+1)
	}
	return most
}

// A stack that is told nothing and does nothing, over the whole matrix:
// the machinery runs every case three times, and a bare client fails.
func TestRunMatrixBare(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every case of the matrix")
	}
	// Every case and telling, each cut short: a bare client's 429s come
	// at once, and the run is the same past the largest window, 600.
	cases := Matrix()
	for i := range cases {
		cases[i].Scenario.Workload.Requests = 1000
	}
	var mu sync.Mutex
	told := map[string]int{}
	results := RunMatrix(t, cases, func(tl Told) Stack {
		mu.Lock()
		told[tl.String()]++
		mu.Unlock()
		return Stack{Name: "bare"}
	})
	require.Len(t, results, 3*len(cases))
	for i, r := range results {
		c := cases[i/3]
		assert.Equal(t, c.Name, r.Case.Name)
		assert.Equal(t, c.Told(Tellings()[i%3]), r.Told)
		o := r.Outcome
		assert.Equal(t, "bare", o.Stack)
		assert.Equal(t, c.Scenario.Workload.Requests, o.Requests, c.Name)
		assert.Positive(t, r.Failed(), "%s: a bare client meets 429s and gives up", c.Name)
		assert.False(t, r.Met())
		assert.Positive(t, o.Least)
		assertNotPastOracle(t, c.Scenario, o)
	}
	assert.Equal(t, len(cases), told["nothing"], "told nothing once per case")

	var b strings.Builder
	require.NoError(t, WriteMatrixTable(&b, results))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 2+len(results))
	assert.Equal(t, "| server | told | time / oracle | 429 share | failed | goal |", lines[0])
	for i, l := range lines[2:] {
		assert.True(t, strings.HasPrefix(l, "| "+results[i].Case.Title+" | "+results[i].Told.String()+" | "), l)
		assert.Contains(t, l, " ✗ |", "every bare run misses its goal")
	}
}

func ExampleMatrix() {
	for _, c := range Matrix()[:6] {
		fmt.Printf("%-20s %s\n", c.Name, c.Goal)
	}
	// Output:
	// dynamic-hour         ≤ 1.10, ≤ 2% 429s
	// dynamic-in-use       ≤ 1.10, ≤ 2% 429s
	// bucket               ≤ 1.05, ≤ 1% 429s
	// nginx-no-burst       ≤ 1.10, ≤ 2% 429s
	// sliding              ≤ 1.10, ≤ 1% 429s
	// sliding-retry-after  ≤ 1.26, ≤ 2% 429s
}
