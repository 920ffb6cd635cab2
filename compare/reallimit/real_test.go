package reallimit_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/compare/reallimit"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// goals are what every steady stack must reach against every real server,
// whatever it was told of the limit. They are the one place the grading
// lives; every run meets all of them.
var goals = []goal{
	{"requests lost (failed or unfinished)", 0, func(r reallimit.Row) float64 { return float64(r.Result.Lost()) }},
	{"time/oracle", 1.15, reallimit.Row.Ratio},
	{"429 share of arrivals", 0.02, func(r reallimit.Row) float64 { return r.Result.RefusedShare() }},
}

// shortfalls are the runs held to bounds a little above the goals, by
// server and what the stack was told ("right", "2x", "unknown"). On a
// two-core machine, twenty-nine runs of every case: nginx with a burst
// at most 1.080 of the oracle and 1.7% of arrivals refused (7 of 407);
// without one at most 1.136 (told nothing: 1.092-1.125) and 1.5% (6 of
// 406). Before the first blind pause was taken at the guess, told twice
// the rate without a burst refused 9 of 409 in 3 stacks' runs of 100.
// The bounds keep a request's worth of 429s, and some time, for a machine
// under load.
//
// nginx without a burst counts to the millisecond from its last
// admission and names no wait in its 429s: on a shared machine, loopback
// jitter alone refuses a client pacing at the limit (the oracle plan
// itself has seen 56% of its arrivals refused), and each such 429 costs
// the controller a guess and a climb back, up to 1.26 of the oracle on a
// loaded machine. With a burst, one 429 more than the worst run seen
// (a doubled rate's first seconds, the slow start's overshoot) is 2.2%.
var shortfalls = map[string][]goal{
	"nginx no burst/right":           loosened(1.25, 0.025),
	"nginx no burst/2x":              loosened(1.25, 0.025),
	"nginx no burst/unknown":         loosened(1.25, 0.025),
	"nginx burst=10 nodelay/2x":      loosened(1.15, 0.025),
	"nginx burst=10 nodelay/unknown": loosened(1.15, 0.025),
}

type goal = struct {
	name string
	max  float64
	got  func(reallimit.Row) float64
}

// loosened is goals with the time and 429 bounds given.
func loosened(ratio, refused float64) []goal {
	g := append([]goal(nil), goals...)
	g[1].max, g[2].max = ratio, refused
	return g
}

// planStretch is the headroom the oracle plan gives itself (see
// reallimit.Plan): 1%, a millisecond a request at 10 a second.
const planStretch = 0.01

// RealEnv names the environment variable that runs TestRealLimiters.
const RealEnv = "STEADY_REAL"

// DocsEnv names the environment variable that asks TestRealLimiters to
// write its table, as Markdown, to the file it names.
const DocsEnv = "STEADY_REAL_DOCS"

// serverCase is a server and one of its limits. Its requests take the
// oracle about 40 s, a third of the run's cap (reallimit.DefaultMaxTime):
// long enough that a round trip weighs nothing on the ratio, and that the
// few 429s that find an unknown limit are not most of a 2% share (a run
// of 200 requests allows 4), short enough that a stack three times
// slower still finishes.
type serverCase struct {
	name     string
	server   *reallimit.Server
	prefix   string
	limit    reallimit.Limiter
	requests int
}

// telling is what a stack is told of the limit: a multiple of the server's
// rate, 0 for nothing.
type telling struct {
	name   string
	factor float64
}

var tellings = []telling{{"right", 1}, {"2x", 2}, {"unknown", 0}}

type stack struct {
	name string
	// told labels what the stack was told of a limit of perSecond.
	told func(perSecond float64, t telling) string
	wrap func(perSecond float64, baseURL string) func(http.RoundTripper) http.RoundTripper
}

// withRateTold labels what a preset's WithRate was told of a limit of
// perSecond.
func withRateTold(perSecond float64, t telling) string {
	if t.factor == 0 {
		return "WithRate 0 (unknown)"
	}
	return fmt.Sprintf("WithRate %g/min (%s)", 60*perSecond*t.factor, t.name)
}

var stacks = []stack{
	{
		name: "together",
		told: withRateTold,
		wrap: func(perSecond float64, baseURL string) func(http.RoundTripper) http.RoundTripper {
			return func(next http.RoundTripper) http.RoundTripper {
				return together.NewTransport(next,
					together.WithBaseURL(baseURL),
					together.WithRate(together.RouteChat, 60*perSecond))
			}
		},
	},
	{
		// An OpenAI-compatible host behind the server's limit (vLLM behind
		// nginx): the preset learns a model's rate from OpenAI's stated
		// limit, which these servers do not send, so told nothing it
		// starts slow.
		name: "openai",
		told: withRateTold,
		wrap: func(perSecond float64, baseURL string) func(http.RoundTripper) http.RoundTripper {
			return func(next http.RoundTripper) http.RoundTripper {
				return openai.NewTransport(next,
					openai.WithBaseURL(baseURL),
					openai.WithRate(openai.RouteChat, 60*perSecond))
			}
		},
	},
	{
		name: "retry+bucket.Limit",
		told: func(perSecond float64, t telling) string {
			if t.factor == 0 {
				return "Rate{} (unknown)"
			}
			return fmt.Sprintf("PerSecond(%g) (%s)", perSecond*t.factor, t.name)
		},
		wrap: func(perSecond float64, _ string) func(http.RoundTripper) http.RoundTripper {
			rate := bucket.Rate{}
			if perSecond > 0 {
				rate = bucket.PerSecond(perSecond)
			}
			return func(next http.RoundTripper) http.RoundTripper {
				return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate)))
			}
		},
	},
}

// TestRealLimiters drives steady's stacks against nginx and
// express-rate-limit and grades every run against the oracle computed from
// the server's configuration (see [goals]). Every run has a key of its
// own, so all of them go at once, each in a goroutine: the whole test takes
// as long as the longest run, under a minute. (Subtests with t.Parallel would go at
// most -parallel at a time, GOMAXPROCS by default: two on a two-core
// machine, seven minutes.) The subtests only grade what the runs measured.
// Beside the stacks, each server case has a run of
// reallimit.Plan, the oracle as a client, which shows how near the
// oracle's time this machine lets a client come.
func TestRealLimiters(t *testing.T) {
	if testing.Short() {
		t.Skip("most of a minute of traffic against real servers")
	}
	if os.Getenv(RealEnv) == "" && os.Getenv(DocsEnv) == "" {
		// Graded by the wall clock: other tests running beside it (go
		// test runs packages at once) pass their load for the client's.
		t.Skipf("set %s=1 (or %s) to run it alone, on a machine with time to spare (.ci/run does)", RealEnv, DocsEnv)
	}
	nginx, express := startNginx(t), startExpress(t)
	cases := []serverCase{
		{"nginx burst=10 nodelay", nginx, reallimit.NginxBurstPrefix, reallimit.NginxBurst, 400},
		{"nginx no burst", nginx, reallimit.NginxNoBurstPrefix, reallimit.NginxNoBurst, 400},
		{"express draft-7", express, reallimit.ExpressDraft7Prefix, reallimit.ExpressLimit, 500},
		{"express draft-8", express, reallimit.ExpressDraft8Prefix, reallimit.ExpressLimit, 500},
		{"express legacy X-RateLimit", express, reallimit.ExpressLegacyPrefix, reallimit.ExpressLimit, 500},
	}

	type job struct {
		row  reallimit.Row
		plan bool
		run  reallimit.Run
	}
	var jobs []job
	// A prefix of the process's start keeps keys apart from any earlier
	// run against the same servers.
	prefix := fmt.Sprintf("k%x", time.Now().UnixNano())
	add := func(c serverCase, name, told string, plan bool, wrap func(http.RoundTripper) http.RoundTripper) {
		jobs = append(jobs, job{
			row:  reallimit.Row{Server: c.name, Limit: c.limit, Stack: name, Told: told},
			plan: plan,
			run: reallimit.Run{
				URL:      c.server.URL + c.prefix + "/chat/completions",
				Key:      fmt.Sprintf("%s-%d", prefix, len(jobs)),
				Requests: c.requests, // the callers and the cap are Run's defaults, which the page states
				Stack:    wrap,
			},
		})
	}
	for _, c := range cases {
		require.Greater(t, reallimit.Oracle(c.limit, c.requests), 30*time.Second,
			"%s: a run so short that loopback noise would weigh on its ratio", c.name)
		add(c, "oracle plan", "the limit", true, reallimit.Plan(c.limit, planStretch))
		for _, s := range stacks {
			for _, tl := range tellings {
				add(c, s.name, s.told(c.limit.Rate(), tl), false, s.wrap(c.limit.Rate()*tl.factor, c.server.URL+c.prefix))
			}
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for i := range jobs {
		wg.Go(func() { jobs[i].row.Result = jobs[i].run.Do(context.Background()) })
	}
	wg.Wait()
	rows := make([]reallimit.Row, len(jobs))
	for i, j := range jobs {
		rows[i] = j.row
	}
	t.Logf("%d runs at once, %v in all:\n%s", len(jobs), time.Since(start).Round(time.Millisecond), reallimit.Table(rows))
	if path := os.Getenv(DocsEnv); path != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, reallimit.Document(rows), 0o644))
		t.Logf("wrote %s", path)
	}

	for _, j := range jobs {
		r := j.row
		t.Run(r.Server+"/"+r.Stack+"/"+r.Told, func(t *testing.T) {
			res := r.Result
			assert.Equal(t, res.Requests, res.Succeeded+res.Failed+res.Unfinished, "every request is counted once")
			assert.Zero(t, res.Errors, "attempts without an answer, on loopback: %v", res.Problems)
			if res.Lost() == 0 {
				// The yardstick's own check: no client beats the server's
				// rules. One that seems to has a server that does not
				// limit as configured, or an oracle that is wrong.
				assert.GreaterOrEqual(t, res.Time, reallimit.Oracle(r.Limit, res.Requests)-10*time.Millisecond,
					"faster than the server's configuration allows")
			}
			if j.plan {
				// The oracle as a client is graded on nothing but that it
				// loses nothing; its figures are the table's reference.
				assert.Zero(t, res.Lost(), "%v", res.Problems)
				return
			}
			bounds := goals
			if sf, ok := shortfalls[r.Server+"/"+r.Told[strings.LastIndex(r.Told, "(")+1:len(r.Told)-1]]; ok {
				bounds = sf
			}
			for _, g := range bounds {
				assert.LessOrEqualf(t, g.got(r), g.max, "goal: %s (time %v, oracle %v, arrivals %d, 429s %d, failed %d, unfinished %d; %v)",
					g.name, res.Time.Round(time.Millisecond), r.Oracle().Round(time.Millisecond),
					res.Arrivals, res.Refused, res.Failed, res.Unfinished, res.Problems)
			}
		})
	}
}
