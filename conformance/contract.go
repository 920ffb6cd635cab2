package conformance

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/steadyapi/steady/transport"
)

// Rule is one promise of the [net/http.RoundTripper] contract that every
// steady decorator keeps (DESIGN.md, "Contracts every decorator keeps").
// [CheckMiddleware] reports on each of them; its value is the name used in
// reports and failure messages.
type Rule string

// The rules [CheckMiddleware] checks, in the order of its [Report].
const (
	// RuleRequestUnmodified: the caller's *http.Request is never modified,
	// neither while the middleware runs nor after it returns, whether it
	// retries or not: method, URL, header (compared deeply), Body, GetBody,
	// ContentLength, Host, Close, TransferEncoding, Trailer and context.
	RuleRequestUnmodified Rule = "request-unmodified"

	// RuleRequestBodyClosed: the caller's request body is closed on every
	// path (success, inner error, an error answer returned, a context
	// cancelled before the call), and so is every body taken from GetBody.
	RuleRequestBodyClosed Rule = "request-body-closed"

	// RuleBodyReplayed: every attempt that reaches the inner transport
	// carries the very bytes the caller sent, with a ContentLength that does
	// not contradict them, whether the request has GetBody or not.
	RuleBodyReplayed Rule = "body-replayed"

	// RuleNotResent: a request the server may have processed is not sent
	// again after its connection failed. A chat completion sent with POST
	// and no Idempotency-Key is not idempotent, and a duplicate is billed:
	// once an attempt's body went out and the connection failed before
	// the answer (reset, or closed by the server), no further attempt of
	// that call reaches the inner transport; nor does one while an earlier
	// attempt is still being answered (a hedge), or after one was answered
	// 2xx.
	RuleNotResent Rule = "not-resent"

	// RuleRetryAfter: an attempt that follows an answer carrying
	// Retry-After is not sent before the wait it asks for has passed, or
	// 30 s when it asks for longer (a middleware may cap a server's wait,
	// but not below that): the server said when it would take the call
	// again, and a retry sooner is refused and counts against the key.
	// After a 429 this holds for any next attempt; after another status
	// (an overloaded model's 503), for the same request sent again, not
	// for one sent to another model.
	RuleRetryAfter Rule = "retry-after"

	// RuleDiscardedDrained: every response the middleware does not return
	// (a 429 or 5xx it retried) is closed, after reading it to its end or
	// at least [transport.DrainLimit] bytes of it, so its connection can be
	// reused.
	RuleDiscardedDrained Rule = "discarded-drained"

	// RuleReturnedNotRead: the body of the response returned is not read
	// or buffered: RoundTrip returns before the body has been written, and
	// each chunk the server streams reaches the caller as it is written.
	RuleReturnedNotRead Rule = "returned-not-read"

	// RuleResponseIntact: the response returned is one the inner transport
	// produced, the same object or at least its status, its header fields
	// (more may be added) and its bytes, and closing it closes the inner
	// transport's body. The body of a 101 Switching Protocols is the
	// upgraded connection (a WebSocket's), and still writes to it.
	RuleResponseIntact Rule = "response-intact"

	// RuleAnswerKept: no call is lost. With the caller's context live,
	// RoundTrip does not return an error of its own when the inner
	// transport answered the last attempt (the answer, a 503 given up on
	// included, goes to the caller), nor refuse with an error a call it
	// never sent when nothing has failed and no deadline presses. Among
	// calls sent at once on one transport, a retry that a breaker
	// refuses (an error matching [transport.ErrModelUnavailable]), opened
	// by the others' failures while the retry waited, is the model judged
	// down, not an answer lost: which calls meet it depends on the order
	// in which their outcomes arrive.
	RuleAnswerKept Rule = "answer-kept"

	// RuleResponseOrError: RoundTrip returns a response with a body or an
	// error, never both and never neither, and does not panic.
	RuleResponseOrError Rule = "response-or-error"

	// RuleContextCanceled: a cancelled context ends the call promptly with
	// an error matching [context.Canceled], whether the context was
	// cancelled before the call, while the inner transport was answering, or
	// while the middleware was waiting to retry; attempts carry a context
	// derived from the caller's.
	RuleContextCanceled Rule = "context-canceled"

	// RuleContextDeadline: no wait outlives the context's deadline. Told by
	// the server to come back long after the deadline, the middleware
	// refuses the wait at once, not after waiting part of the way (it
	// returns a response, or an error matching [context.DeadlineExceeded]);
	// with a server that never answers, it returns at the deadline with
	// such an error, not later.
	RuleContextDeadline Rule = "context-deadline"

	// RulePauseBounded: no single answer, however long the wait it asks
	// for, stops the transport for other calls for long: after a 429 that
	// says to come back in a day, a later call on the same transport is
	// sent within [MaxPause] (a limiter may pause the key on a 429, but a
	// garbage Retry-After must not stall it).
	RulePauseBounded Rule = "pause-bounded"

	// RuleNoGoroutineLeak: no goroutine outlives the calls that started it
	// once their responses are closed and their contexts are done.
	RuleNoGoroutineLeak Rule = "no-goroutine-leak"

	// RuleConcurrentUse: one wrapped transport serves many goroutines at
	// once, each caller getting the answer to its own request. (Data races
	// are reported by the race detector, which fails the test itself.)
	RuleConcurrentUse Rule = "concurrent-use"

	// RuleSecretHidden: the Authorization header's value never appears in
	// an error, nor goes to a host other than the one the caller's request
	// names.
	RuleSecretHidden Rule = "secret-hidden"
)

// Rules returns every rule [CheckMiddleware] checks, in report order.
func Rules() []Rule {
	return []Rule{
		RuleRequestUnmodified, RuleRequestBodyClosed, RuleBodyReplayed,
		RuleNotResent, RuleRetryAfter, RuleDiscardedDrained, RuleReturnedNotRead, RuleResponseIntact,
		RuleAnswerKept, RuleResponseOrError, RuleContextCanceled, RuleContextDeadline,
		RulePauseBounded, RuleNoGoroutineLeak, RuleConcurrentUse, RuleSecretHidden,
	}
}

// Result is what [CheckMiddleware] found for one rule.
type Result struct {
	Rule Rule // the rule checked

	// Failures says how the rule was broken, one line per observation,
	// each naming the check and scenario that saw it. Empty when the rule
	// holds.
	Failures []string

	// Exercised reports whether some scenario gave the rule something to
	// check. A middleware that never retries replays no body and discards
	// no response, so those rules hold without having been exercised; the
	// [WithRetriesExpected] option turns that into a failure.
	Exercised bool
}

// Passed reports whether the rule holds.
func (r Result) Passed() bool { return len(r.Failures) == 0 }

// String is one line per failure, or the rule and "pass" (or "pass, not
// exercised").
func (r Result) String() string {
	switch {
	case len(r.Failures) > 0:
		return fmt.Sprintf("%s: FAIL: %s", r.Rule, strings.Join(r.Failures, "\n\t"))
	case !r.Exercised:
		return fmt.Sprintf("%s: pass (not exercised)", r.Rule)
	}
	return fmt.Sprintf("%s: pass", r.Rule)
}

// Report is the outcome of [CheckMiddleware]: one [Result] per rule, in the
// order of [Rules].
type Report struct {
	Results []Result // one per rule, in the order of Rules
}

// Passed reports whether every rule holds.
func (r Report) Passed() bool { return len(r.Failed()) == 0 }

// Failed lists the rules broken, in report order.
func (r Report) Failed() []Rule {
	var failed []Rule
	for _, res := range r.Results {
		if !res.Passed() {
			failed = append(failed, res.Rule)
		}
	}
	return failed
}

// Result returns the result for rule; the zero Result (not exercised, no
// failures) when the report has none.
func (r Report) Result(rule Rule) Result {
	for _, res := range r.Results {
		if res.Rule == rule {
			return res
		}
	}
	return Result{Rule: rule}
}

// String is the report, one rule per line.
func (r Report) String() string {
	var b strings.Builder
	for _, res := range r.Results {
		b.WriteString(res.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Option adjusts [CheckMiddleware] and [TestMiddleware].
type Option func(*suiteConfig)

type suiteConfig struct {
	goroutines    int
	expectRetries bool
}

// WithGoroutines sets how many goroutines share one wrapped transport in the
// concurrent-use check (default 16; each makes three calls).
func WithGoroutines(n int) Option {
	return func(c *suiteConfig) {
		if n > 0 {
			c.goroutines = n
		}
	}
}

// WithRetriesExpected declares that the middleware retries a 503 that carries
// Retry-After: 0. The suite detects retrying by observation, so a middleware
// that never retries passes the replay and drain rules without exercising
// them; with WithRetriesExpected, not retrying is itself a failure of those rules,
// so a retry middleware cannot pass by having stopped retrying.
func WithRetriesExpected() Option { return func(c *suiteConfig) { c.expectRetries = true } }

// MaxPause is the longest [RulePauseBounded] lets one answer stop a
// transport for the calls after it: far above any cap a limiter keeps
// (steady's bucket.Limit: 30 s), far below the day a garbage Retry-After
// asks for.
const MaxPause = 10 * time.Minute

// ContractModel is the model every request of the contract suite names: a
// middleware that acts per model (a fallback chain, a breaker per model) is
// configured for it to be exercised.
const ContractModel = "meta-llama/Llama-3.3-70B-Instruct-Turbo"

// TestMiddleware checks mw against the RoundTripper contract every steady
// decorator keeps, as [testing/fstest.TestFS] checks a file system: each
// group of scenarios runs as a subtest, and each broken rule fails it with
// t.Errorf naming the rule and what was seen.
//
// mw is called inside each scenario, around an inner transport the suite
// scripts (answers, errors, hangs, streamed bodies), inside a
// [testing/synctest] bubble, so a middleware that waits (backoff,
// Retry-After, a limiter) waits in virtual time. State that keeps time (a
// limiter's bucket, a budget's window) is best built when mw is called, so
// that it reads the bubble's clock; goroutines started outside a bubble
// cannot wait on what is made inside one.
//
// Every request is a chat completion for [ContractModel], sent to
// https://api.conformance.test/v1/chat/completions with an Authorization
// header whose key must not leak. Behaviour is observed, not configured: a middleware that does not retry,
// or does not limit, passes the rules that only retrying exercises; see
// [WithRetriesExpected].
//
// The suite makes its own bubbles, so it is not called from inside one; and
// it looks for leaked goroutines, so it is not run in parallel with other
// tests.
func TestMiddleware(t *testing.T, mw transport.Middleware, opts ...Option) {
	t.Helper()
	runSuite(t, mw, opts, func(t *testing.T, f ruleFailure) {
		t.Helper()
		t.Errorf("%s broken: %s", f.rule, f.msg)
	})
}

// CheckMiddleware runs the checks of [TestMiddleware] on mw, as subtests of
// t, but does not fail t: it logs what it finds and returns the result for
// each rule. It is how peer libraries with known faults are measured, so
// that a test can assert exactly which rules they break.
func CheckMiddleware(t *testing.T, mw transport.Middleware, opts ...Option) Report {
	t.Helper()
	return runSuite(t, mw, opts, func(t *testing.T, f ruleFailure) {
		t.Helper()
		t.Logf("%s broken: %s", f.rule, f.msg)
	})
}

// ruleFailure is one broken rule, as a check saw it.
type ruleFailure struct {
	rule Rule
	msg  string
}

// ruleRecorder collects the failures of one group of scenarios. Checks run in
// several goroutines (the concurrent group, the inner transport), so it
// locks.
type ruleRecorder struct {
	mu        sync.Mutex
	failures  []ruleFailure
	seen      map[ruleFailure]bool
	count     map[Rule]int
	exercised map[Rule]bool
}

func newRuleRecorder() *ruleRecorder {
	return &ruleRecorder{seen: map[ruleFailure]bool{}, count: map[Rule]int{}, exercised: map[Rule]bool{}}
}

func (r *ruleRecorder) fail(rule Rule, format string, args ...any) {
	f := ruleFailure{rule, fmt.Sprintf(format, args...)}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exercised[rule] = true
	if r.seen[f] {
		return
	}
	r.seen[f] = true
	if r.count[rule]++; r.count[rule] > maxFailuresShown {
		return
	}
	r.failures = append(r.failures, f)
}

// maxFailuresShown bounds the failures a group reports for one rule: a
// broken rule is usually broken by every call, and the first few say why.
const maxFailuresShown = 2

// all returns the failures, with a line for each rule that had more.
func (r *ruleRecorder) all() []ruleFailure {
	r.mu.Lock()
	defer r.mu.Unlock()
	all := slices.Clone(r.failures)
	for _, rule := range Rules() {
		if n := r.count[rule]; n > maxFailuresShown {
			all = append(all, ruleFailure{rule, fmt.Sprintf("and %d more failures like these", n-maxFailuresShown)})
		}
	}
	return all
}

func (r *ruleRecorder) exercise(rule Rule) {
	r.mu.Lock()
	r.exercised[rule] = true
	r.mu.Unlock()
}

func runSuite(t *testing.T, mw transport.Middleware, opts []Option, report func(*testing.T, ruleFailure)) Report {
	t.Helper()
	cfg := suiteConfig{goroutines: 16}
	for _, o := range opts {
		o(&cfg)
	}
	byRule := map[Rule]*Result{}
	for _, rule := range Rules() {
		byRule[rule] = &Result{Rule: rule}
	}
	collect := func(t *testing.T, group string, rec *ruleRecorder) {
		t.Helper()
		for _, f := range rec.all() {
			report(t, f)
			res := byRule[f.rule]
			res.Failures = append(res.Failures, group+": "+f.msg)
		}
		for rule := range rec.exercised {
			byRule[rule].Exercised = true
		}
	}
	for _, g := range scenarioGroups() {
		t.Run(g.name, func(t *testing.T) {
			t.Helper()
			rec := newRuleRecorder()
			// Goroutines that existed before the group, the suite's own
			// and those of earlier groups, are not its leaks.
			before := goleak.IgnoreCurrent()
			ended := false
			defer func() {
				t.Helper()
				if !ended {
					// synctest.Test ends the subtest at once when its bubble
					// failed, which only the race detector does here.
					rec.fail(RuleConcurrentUse, "the scenarios were cut short: the race detector found a data race (its report is above)")
				}
				// The bubble sees its own goroutines; what the middleware
				// started outside it, or left blocked in it for good, shows
				// here.
				if err := goleak.Find(before); err != nil {
					rec.fail(RuleNoGoroutineLeak, "goroutines outlived the group: %v", err)
				}
				collect(t, g.name, rec)
			}()
			if mw == nil {
				rec.fail(RuleResponseOrError, "the middleware is nil")
			} else {
				runGroup(t, rec, mw, &cfg, g.run)
			}
			ended = true
		})
	}
	if cfg.expectRetries {
		rec := newRuleRecorder()
		for _, rule := range []Rule{RuleBodyReplayed, RuleDiscardedDrained} {
			if !byRule[rule].Exercised {
				rec.fail(rule, "no call was retried after a 503 with Retry-After: 0, though WithRetriesExpected was given")
			}
		}
		collect(t, "expect-retries", rec)
	}
	var rep Report
	for _, rule := range Rules() {
		rep.Results = append(rep.Results, *byRule[rule])
	}
	return rep
}
