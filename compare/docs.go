package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/steadyapi/steady/conformance"
)

// scenarioRun is one scenario and the outcome of each stack in it.
type scenarioRun struct {
	Scenario conformance.Scenario
	Outcomes []conformance.Outcome
}

// plotName is the file name of a scenario's plot.
func plotName(s conformance.Scenario) string { return "comparison-" + s.Name + ".png" }

// markdown renders the comparison document: the scenarios, then the model
// matrix.
func markdown(runs []scenarioRun, presets []presetRun, matrix []matrixRun) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`# How steady compares

Written by ` + "`go run ./compare`" + `; do not edit by hand.

Every stack meets every scenario against the simulated provider
(` + "`conformance.Server`" + `, which limits, refuses and fails as Together documents), inside
a ` + "`testing/synctest`" + ` bubble: the times are virtual and exact, the same on any
machine; only the stacks' own random jitter (their backoffs; the server's draws
are seeded) makes one run of the page differ from the next, by a few
requests and a second or so in the tables. Each run starts from a fresh
server and a fresh stack.

The stacks:

- **bare**: no middleware; the caller sees the server's answers as they are.
- **naive (guide's port)**: a faithful Go port of the algorithm in the guide
  this project started from (` + "`conformance.Naive`" + `): a token bucket of 500 RPM for
  chat and 250 for embeddings that starts full and refills only inside
  ` + "`acquire`" + ` (a queued caller waits until a later caller arrives), a retry loop
  that sleeps ` + "`Retry-After`" + ` or 5 s plus up to 2 s on a 429 and 2^attempt s on a
  5xx (4 retries, sleeps deaf to deadlines), and for the embedding job its
  sequential batches of 20 with a fixed 3 s sleep between them.
- **go-retryablehttp**: its defaults (4 retries, 1–30 s exponential backoff,
  ` + "`Retry-After`" + ` read on 429 and 503).
- **failsafe-go**: failsafehttp's retry policy (4 retries, 1–30 s backoff,
  ` + "`Retry-After`" + ` in whole seconds), a circuit breaker (5 failures in 10 calls,
  30 s open) and a smooth rate limiter that lets a caller wait up to a minute,
  per endpoint at the guide's figures (chat 600, embeddings 300 per minute), as
  steady retry+bucket is given them.
- **steady retry**: ` + "`retry.New()`" + ` alone: 4 retries, waits the server
  directs (capped at 60 s, never shortened, refused when they would outlive the
  deadline), full-jitter backoff otherwise, a 20% retry budget. No limiter.
- **steady retry+bucket**: the retry decorator around ` + "`bucket.Limit`" + `, one bucket
  per endpoint started at the guide's figures (chat 600, embeddings 300 per
  minute), which the server's answers then correct.
- **steady together**: ` + "`together.NewTransport`" + ` with its defaults and the second chat
  model as the first one's fallback; the embedding job is ` + "`together.EmbedAll`" + `.

Every run is graded by two figures: its time against the oracle's, and the
share of its arrivals the server answered 429. The oracle is a client that
knows the server's state and sends each request at the first instant the
server would admit it (N requests at R per second with a burst of B take it
(N−B)/R), from as many callers as the scenario has, each held until its
answer comes (where a burst is more than the callers can send at once, they
bind); under Together's dynamic limit its limit grows because it uses it,
so a stack that holds back is not excused by the smaller limit its caution
earns.

The columns: *requests* the caller made; *succeeded* (a 2xx reached the
caller), *failed* (the stack gave up before the caller's deadline), *hung* (the
call ended only because its context did, at its deadline or at the scenario's
two-hour horizon, or was never sent); *arrivals*, *429s* and *5xx* as the server
saw them; *wall*, the virtual time until the last caller returned (✗: not all
the work was done); *oracle*, the oracle's time; *× oracle*, wall over the
oracle's time; *429 share*, the 429s over the arrivals; *max late*, for
requests with deadlines, how long after its deadline the latest caller got its
answer. Each plot shows the requests the server accepted per second for each
stack, and, dashed, the oracle's; for requests with deadlines, it shows instead
when each caller got its answer against its deadline.

Reading the numbers: the oracle does not wait for its last answer, so a
perfect stack shows a ratio a little above 1. In the overloaded scenario the
oracle, as a stack with a fallback does, sends to the other model while the one
asked for fails. A wall of 2h0m0s is the horizon: some callers were still
waiting when the run was cut off. Within a run every wait is exact, but
callers that are ready at the same virtual instant run in any order, so two
runs can differ by a few requests.
`)
	for _, r := range runs {
		s := r.Scenario
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Title, s.About)
		if err := conformance.WriteTable(&b, r.Outcomes); err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "\n![%s](%s)\n", s.Title, plotName(s))
	}
	b.Write(presetMarkdown(presets))
	m, err := matrixMarkdown(matrix)
	if err != nil {
		return nil, err
	}
	b.Write(m)
	return b.Bytes(), nil
}

// writeDocs writes comparison.md, a plot per scenario and the matrix's
// plots into dir.
func writeDocs(dir string, runs []scenarioRun, presets []presetRun, matrix []matrixRun) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md, err := markdown(runs, presets, matrix)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if err := writePlot(filepath.Join(dir, plotName(r.Scenario)), r.Scenario, r.Outcomes); err != nil {
			return err
		}
	}
	if err := writeMatrixPlots(dir, matrix); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "comparison.md"), md, 0o644)
}
