package conformance

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Goal is what a stack should achieve against one server model: every
// request succeeds, in at most Ratio times the oracle's time, with at
// most TooMany of the server's arrivals answered 429.
type Goal struct {
	Ratio   float64 // most [Outcome.Ratio]
	TooMany float64 // most [Outcome.TooManyShare]
}

// String is the goal as a table shows it: "≤ 1.10, ≤ 2% 429s".
func (g Goal) String() string {
	return fmt.Sprintf("≤ %.2f, ≤ %s 429s", g.Ratio, FormatShare(g.TooMany))
}

// MatrixCase is one server model of the [Matrix], the work a stack does
// against it, and the goal the stack is held to.
type MatrixCase struct {
	// Name is a short identifier, for subtests and file names
	// ("nginx-no-burst").
	Name string
	// Title says what the server does, for tables.
	Title string
	// Scenario is the server and the workload: a closed loop on [Chat].
	Scenario Scenario
	// Goal is what a good stack achieves here, whatever it was told.
	Goal Goal
}

// Told is what one run of the matrix tells the stack under test of the
// server's limit: the true limit times Factor, or nothing.
type Told struct {
	// Case is the name of the case run, for a stack that wants to log it
	// or a test that builds a stack per case.
	Case string
	// Factor is the multiple of the true limit the stack is told: 1 is
	// the right limit, 2 twice it; 0 means the stack is told nothing and
	// has to find the limit from the server's answers.
	Factor float64
	// Endpoint is the endpoint the workload calls, and the limit's.
	Endpoint string
	// RPM and TPM are the true requests and tokens per minute times
	// Factor; 0 when Factor is 0 or the server has no such limit. A
	// window's limit is told per minute (100 per 10 s: 600 RPM), a
	// dynamic limit by its cap, the most the key can be allowed.
	RPM, TPM float64
}

// Known reports whether the stack is told a limit at all.
func (t Told) Known() bool { return t.Factor > 0 }

// String says what the stack was told: "the limit (600 RPM)", "2× the
// limit (1200 RPM, 13200 TPM)", "nothing".
func (t Told) String() string {
	if !t.Known() {
		return "nothing"
	}
	what := "the limit"
	if t.Factor != 1 {
		what = formatNumber(t.Factor) + "× the limit"
	}
	rates := []string{formatNumber(t.RPM) + " RPM"}
	if t.TPM > 0 {
		rates = append(rates, formatNumber(t.TPM)+" TPM")
	}
	return what + " (" + strings.Join(rates, ", ") + ")"
}

// Tellings are the factors each case of the matrix is run with: the right
// limit, twice it, and nothing (see [Told.Factor]).
func Tellings() []float64 { return []float64{1, 2, 0} }

// TrueRPM is the request limit a client would be told of l: its RPM, or
// for a dynamic limit its cap (its base when it has no cap).
func TrueRPM(l Limit) float64 {
	if !l.Dynamic {
		return l.RPM
	}
	if l.Cap > 0 {
		return l.Cap
	}
	if l.Base > 0 {
		return l.Base
	}
	if l.RPM > 0 {
		return l.RPM
	}
	return 60
}

// Told is what a run of c with factor tells the stack.
func (c MatrixCase) Told(factor float64) Told {
	ep := c.Scenario.Workload.endpoint()
	t := Told{Case: c.Name, Factor: factor, Endpoint: ep}
	if factor > 0 {
		l := c.Scenario.Server.Limits[ep]
		t.RPM, t.TPM = TrueRPM(l)*factor, l.TPM*factor
	}
	return t
}

// Matrix returns the server models a rate controller is graded on: one
// case per model, each with its goal, each to be run with the stack told
// the right limit, twice the limit, and nothing ([Tellings], [RunMatrix]).
// The servers are those a client meets: Together's dynamic limit under
// both readings of its documentation, per-second buckets with and
// without a burst (nginx's limit_req), a sliding-window log, fixed
// windows started by a key's first request (express-rate-limit, with
// each of its header forms) and aligned on the clock, and token limits
// that bind before the request limit; the per-second bucket and the
// one-minute windows are run again with every header dialect
// ([Headers]): Together's, OpenAI's, Anthropic's, Retry-After only, none.
//
// Every workload is a closed loop of 64 callers sending chat requests,
// answered in 100 to 300 ms (200 ± 100), sized so that a run takes
// minutes of virtual time (the dynamic limit takes its hour).
func Matrix() []MatrixCase {
	const (
		callers = 64
		n       = 3000
	)
	chat := func(requests int) Workload {
		return Workload{Model: ScenarioChatModel, Requests: requests, Concurrency: callers}
	}
	var cases []MatrixCase
	add := func(name, title string, lim Limit, h Headers, requests int, g Goal) {
		cases = append(cases, MatrixCase{
			Name:  name,
			Title: title,
			Scenario: Scenario{
				Name:  "matrix-" + name,
				Title: title,
				Server: Config{
					Seed:          int64(len(cases) + 1),
					Limits:        map[string]Limit{Chat: lim},
					Headers:       h,
					Latency:       100 * time.Millisecond,
					LatencyJitter: 200 * time.Millisecond,
				},
				Workload: chat(requests),
			},
			Goal: g,
		})
	}
	const (
		none       = HeaderNoReset
		retryAfter = HeaderNoReset | HeaderRetryAfter
		express    = HeaderNoReset | HeaderRetryAfter // express-rate-limit adds Retry-After to its 429s
	)
	var (
		tight = Goal{Ratio: 1.05, TooMany: 0.01}
		good  = Goal{Ratio: 1.10, TooMany: 0.01}
		loose = Goal{Ratio: 1.10, TooMany: 0.02}
		// A stack that paces evenly at the limit it was told takes 1.25
		// times the oracle's time against five windows the oracle fills
		// at once (3000 requests in four minutes and a moment against
		// five); a server that names nothing better gets that, and a
		// hair for the float arithmetic of the runs.
		blind  = Goal{Ratio: 1.26, TooMany: 0.02}
		dyn    = Limit{Dynamic: true, Base: 60, Cap: 600}
		bucket = Limit{RPM: 600, Algorithm: TokenBucket}
		minute = Limit{RPM: 600, Algorithm: FixedWindow, Window: time.Minute}
		slide  = Limit{RPM: 600, Algorithm: SlidingLog, Window: time.Minute}
		key10s = Limit{RPM: 600, Algorithm: FixedWindow, Window: 10 * time.Second, FromFirstRequest: true}
		tokens = Limit{RPM: 600, TPM: 6600, Algorithm: TokenBucket}
	)
	inUse := dyn
	inUse.Span = SpanInUse

	add("dynamic-hour", "Together's dynamic limit, 60 to 600 RPM: twice the past hour's rate",
		dyn, 0, 6000, loose)
	add("dynamic-in-use", "Together's dynamic limit, 60 to 600 RPM: twice the rate since first use",
		inUse, 0, 6000, loose)
	add("bucket", "per-second bucket, a burst of one second (600 RPM)", bucket, 0, n, tight)
	add("nginx-no-burst", "per-second bucket, no burst (nginx limit_req burst=0, 10 r/s), no headers",
		Limit{RPM: 600, Algorithm: LeakyBucket, Burst: 1}, none, n, loose)
	add("sliding", "sliding 60 s window, 600 per 60 s, headers on every answer", slide, HeaderEveryAnswer, n, good)
	add("sliding-retry-after", "sliding 60 s window, 600 per 60 s, Retry-After on 429s only", slide, retryAfter, n, blind)
	add("fixed-draft-6", "fixed 10 s windows from the first request, 100 each, IETF draft-6 headers (express-rate-limit)",
		key10s, express|HeaderDraft6, n, good)
	add("fixed-draft-7", "fixed 10 s windows from the first request, 100 each, IETF draft-7 headers (express-rate-limit)",
		key10s, express|HeaderDraft7, n, good)
	add("fixed-draft-8", "fixed 10 s windows from the first request, 100 each, IETF draft-8 headers (express-rate-limit)",
		key10s, express|HeaderDraft8, n, good)
	add("fixed-legacy", "fixed 10 s windows from the first request, 100 each, X-RateLimit-* headers (express-rate-limit)",
		key10s, express|HeaderLegacy, n, good)
	for _, d := range []struct {
		name, title string
		h           Headers
		bucket      Goal
		minute      Goal
	}{
		{"together", "Together's headers on every answer", HeaderEveryAnswer, tight, good},
		{"openai", "OpenAI's headers", HeaderOpenAI, tight, good},
		{"anthropic", "Anthropic's headers", HeaderAnthropic, tight, good},
		{"reset-on-429", "x-ratelimit-reset on 429s only (Together's documented form)", 0, tight, blind},
		{"retry-after", "Retry-After on 429s only", retryAfter, loose, blind},
		{"no-headers", "no headers", none, loose, blind},
	} {
		if d.h != 0 { // the bucket's own case has Together's documented form
			add("bucket-"+d.name, "per-second bucket, 600 RPM, "+d.title, bucket, d.h, n, d.bucket)
		}
		add("minute-"+d.name, "one-minute windows on the clock, 600 each, "+d.title, minute, d.h, n, d.minute)
	}
	add("tokens", "per-second buckets, 600 RPM and 6,600 TPM: the tokens bind first (300 requests a minute)",
		tokens, 0, n, loose)
	add("tokens-together", "per-second buckets, 600 RPM and 6,600 TPM, Together's headers on every answer",
		tokens, HeaderEveryAnswer, n, loose)
	add("tokens-openai", "per-second buckets, 600 RPM and 6,600 TPM, OpenAI's headers", tokens, HeaderOpenAI, n, loose)
	return cases
}

// MatrixResult is one run of the matrix: a case, what the stack was told,
// and what became of it.
type MatrixResult struct {
	Case    MatrixCase // the server and workload
	Told    Told       // what the stack was told of the limit
	Outcome Outcome    // what became of the run
}

// Failed is the number of requests that did not succeed: those that
// failed and those that hung.
func (r MatrixResult) Failed() int { return r.Outcome.Requests - r.Outcome.Succeeded }

// Met reports whether the run met its case's goal: no request failed,
// the time against the oracle's and the share of 429s within the goal.
func (r MatrixResult) Met() bool {
	o := r.Outcome
	return o.Complete() && o.Ratio() <= r.Case.Goal.Ratio && o.TooManyShare() <= r.Case.Goal.TooMany
}

// RunMatrix runs a stack over every case, once for each of [Tellings],
// and returns the results in order: case by case, tellings in order.
// Each run is a subtest of t ("case/told-1x", "told-nothing"), run in
// parallel with the others inside its own testing/synctest bubble, where
// build makes the stack from what the run tells it. RunMatrix asserts
// nothing of the results: the caller holds them to goals, or writes them
// down ([WriteMatrixTable]).
func RunMatrix(t *testing.T, cases []MatrixCase, build func(Told) Stack) []MatrixResult {
	t.Helper()
	factors := Tellings()
	results := make([]MatrixResult, len(cases)*len(factors))
	t.Run("matrix", func(t *testing.T) {
		for i, c := range cases {
			for j, f := range factors {
				r := &results[i*len(factors)+j]
				r.Case, r.Told = c, c.Told(f)
				t.Run(c.Name+"/"+tellingName(f), func(t *testing.T) {
					t.Parallel()
					synctest.Test(t, func(*testing.T) {
						r.Outcome = Run(c.Scenario, build(r.Told))
					})
				})
			}
		}
	})
	return results
}

// tellingName names a factor in a subtest: "told-1x", "told-nothing".
func tellingName(f float64) string {
	if f <= 0 {
		return "told-nothing"
	}
	return "told-" + formatNumber(f) + "x"
}

// WriteMatrixTable writes results as a Markdown table, a row per run: the
// server, what the stack was told, the time against the oracle's, the
// share of arrivals answered 429, the requests that did not succeed, and
// the goal; a figure that misses the goal is marked ✗.
func WriteMatrixTable(w io.Writer, results []MatrixResult) error {
	var b strings.Builder
	b.WriteString("| server | told | time / oracle | 429 share | failed | goal |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, r := range results {
		o, g := r.Outcome, r.Case.Goal
		mark := func(s string, miss bool) string {
			if miss {
				return s + " ✗"
			}
			return s
		}
		ratio := "—"
		if o.Least > 0 { // three places: a goal missed by a hair shows
			ratio = fmt.Sprintf("%.3f", o.Ratio())
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Case.Title, r.Told,
			mark(ratio, o.Ratio() > g.Ratio),
			mark(FormatShare(o.TooManyShare()), o.TooManyShare() > g.TooMany),
			mark(fmt.Sprint(r.Failed()), r.Failed() > 0),
			g)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
