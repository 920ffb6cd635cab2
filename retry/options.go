package retry

import (
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"time"

	"github.com/steadyapi/steady/transport"
)

// Defaults of [New], each changed by the option named beside it.
const (
	// DefaultMaxRetries is the retries after the first attempt: the
	// provider guide's 4 ([WithMaxRetries]).
	DefaultMaxRetries = 4
	// DefaultBaseDelay is the backoff before the first retry, before
	// jitter ([WithBackoff]).
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps the backoff, before jitter ([WithBackoff]).
	DefaultMaxDelay = 8 * time.Second
	// DefaultMaxServerWait is the longest server-directed wait honoured
	// ([WithMaxServerWait]).
	DefaultMaxServerWait = 60 * time.Second
	// DefaultBudget is the share of recent requests that retries may add
	// ([WithBudget]).
	DefaultBudget = 0.2
	// DefaultMinRetriesPerSecond is the retry budget's floor ([WithBudget]).
	DefaultMinRetriesPerSecond = 10
)

// BudgetWindow is the span of recent traffic the retry budget looks at.
const BudgetWindow = 10 * time.Second

// Option configures [New]. Options not given keep the defaults documented
// with each; an option given means what its argument says, zero included.
type Option func(*settings)

// settings is what the options set, with the defaults filled in.
type settings struct {
	maxRetries    int
	baseDelay     time.Duration
	maxDelay      time.Duration
	maxServerWait time.Duration
	budget        float64 // < 0: no budget
	floor         float64 // retries a second the budget always allows
	replayLimit   int64   // < 0: never buffer
	idempotent    bool
	maybeDone     []int // statuses after which a request not idempotent is not sent again
	shouldRetry   func(*http.Response, error, *transport.Info) bool
	onEvent       transport.EventFunc
	rand          func(int64) int64
}

func newSettings(opts []Option) settings {
	s := settings{
		maxRetries:    DefaultMaxRetries,
		baseDelay:     DefaultBaseDelay,
		maxDelay:      DefaultMaxDelay,
		maxServerWait: DefaultMaxServerWait,
		budget:        DefaultBudget,
		floor:         DefaultMinRetriesPerSecond,
		replayLimit:   transport.DefaultReplayLimit,
		shouldRetry:   ShouldRetryInfo,
		rand:          rand.Int64N,
	}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	if s.maxRetries == 0 {
		s.replayLimit = -1 // nothing will be sent twice: do not buffer
	}
	return s
}

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default [DefaultMaxRetries], so at most 5 attempts in
// all). 0, or less, means no retries: the decorator then only passes
// requests through, still closing bodies and wrapping errors.
func WithMaxRetries(n int) Option {
	return func(s *settings) { s.maxRetries = max(n, 0) }
}

// WithBackoff shapes the wait before a retry when the server directs none:
// before retry n the decorator waits a uniformly random time in
// [0, min(maxDelay, base·2^(n-1))) ("full jitter"), which spreads clients
// that failed together instead of having them retry in step. The defaults
// are [DefaultBaseDelay] and [DefaultMaxDelay]. A duration that is not
// positive keeps its default; a maxDelay below base is raised to base.
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(s *settings) {
		if base > 0 {
			s.baseDelay = base
		}
		if maxDelay > 0 {
			s.maxDelay = maxDelay
		}
		s.maxDelay = max(s.maxDelay, s.baseDelay)
	}
}

// WithMaxServerWait caps the waits the server directs (retry-after-ms,
// Retry-After, or x-ratelimit-reset on a 429); the default is
// [DefaultMaxServerWait]. A server that asks for longer gets its response
// handed back at once, without sleeping: a caller is better served by the
// real status than by an hour-long stall. 0 or less means any
// server-directed wait above zero returns the response at once.
//
// A server-directed wait is stretched by a positive jitter of up to 10%
// (at least 50 ms, at most 1 s) so that clients told to come back at the
// same instant do not, and never shortened; the jitter is cut back, never
// the wait, when it would overrun the caller's deadline.
func WithMaxServerWait(d time.Duration) Option {
	return func(s *settings) { s.maxServerWait = max(d, 0) }
}

// WithBudget bounds retries across all requests through one decorator
// (one call of [New]), in the manner of Finagle's and Envoy's retry
// budgets, so that an outage cannot multiply the traffic sent to a
// struggling server. Over the last [BudgetWindow] (10 s, counted in ten
// one-second slots), retries may number at most
//
//	max(ratio × requests, minPerSecond × 10)
//
// where requests counts calls of RoundTrip, not attempts, each in the slot
// of the instant its first attempt ended (taken from a limiter under the
// decorator that timed the answer, when there is one: see
// [transport.Info.AnsweredAt]). The floor lets a
// quiet client still retry; the ratio caps a busy one at ratio more
// traffic. When the budget is spent, the last response (or error) is
// returned instead of retrying. The defaults are [DefaultBudget] and
// [DefaultMinRetriesPerSecond]; negative values count as 0, NaN keeps the
// default, and a budget of 0 and 0 allows no retry at all ([WithoutBudget]
// turns it off).
//
// Only what reaches the server counts. A request whose first attempt a
// decorator under this one refused before sending it (an error matching
// [transport.ErrNotSent], as a limiter's refusal does, or
// [transport.ErrModelUnavailable], as an open breaker's does) is not a
// request: during an outage, the refusals of an open breaker would
// otherwise raise the retries the other requests may send to the failing
// server. A retry takes its place in the budget as it is allowed, and
// gives it back when its attempt is refused so, or when it is not sent at
// all (its body could not be had again, or the context ended during the
// wait before it).
//
// Counting costs the happy path one atomic add; the budget is checked only
// before a retry, and may be overshot by the few retries that race for its
// last place.
func WithBudget(ratio, minPerSecond float64) Option {
	return func(s *settings) {
		// A NaN would make every comparison with the budget false: no
		// retry would ever be refused.
		if !math.IsNaN(ratio) {
			s.budget = max(ratio, 0)
		}
		if !math.IsNaN(minPerSecond) {
			s.floor = max(minPerSecond, 0)
		}
	}
}

// WithoutBudget turns the retry budget off: every request may use all its
// retries, whatever the others do.
func WithoutBudget() Option {
	return func(s *settings) { s.budget = -1 }
}

// WithReplayLimit sets the most of a request body without GetBody that is
// buffered so it can be sent again (see transport.Replay); the default is
// transport.DefaultReplayLimit (32 MiB). A larger body is sent once and
// not retried. 0 or less means never buffer: only bodies with GetBody are
// retried.
func WithReplayLimit(n int64) Option {
	return func(s *settings) {
		if n <= 0 {
			n = -1
		}
		s.replayLimit = n
	}
}

// WithIdempotent declares the requests safe to send twice: the server
// deduplicates them, or they have no effect that is billed. A connection
// that fails after the request may have been written (a reset, an EOF
// before the answer) is then retried like one that failed before, for
// every request. Without it only requests that are idempotent by net/http's
// rule are (see [ShouldRetry]).
func WithIdempotent() Option {
	return func(s *settings) { s.idempotent = true }
}

// WithMaybeProcessed names answers after which the server may have acted
// on the request (created a fine-tune or a batch, which is billed): a
// request that is not idempotent by the rule that governs connection
// failures (see [ShouldRetry] and [WithIdempotent]) is not sent again after
// an answer with one of these statuses, which the caller gets as it came,
// unless the answer says x-should-retry: true. By default every retried
// status is retried for every request, as the providers' SDKs do for
// inference: 500, 502 and 504 are the statuses to name for a route whose
// requests create what a second send would create again. A later
// WithMaybeProcessed replaces an earlier one; none (or no statuses) means
// none.
func WithMaybeProcessed(statuses ...int) Option {
	return func(s *settings) { s.maybeDone = append([]int(nil), statuses...) }
}

// maybeProcessed reports whether resp is an answer after which the server
// may have acted on the request (WithMaybeProcessed), and did not say it
// may be sent again.
func (s *settings) maybeProcessed(resp *http.Response) bool {
	if resp == nil || len(s.maybeDone) == 0 || !slices.Contains(s.maybeDone, resp.StatusCode) {
		return false
	}
	return transport.RetryVerdict(resp.Header) != transport.VerdictRetry
}

// WithShouldRetry replaces the built-in choice of which outcomes are
// retried ([ShouldRetry]); an override can call the built-in one and
// adjust. It must not read resp.Body. Whatever it says, a request is not
// retried once its context is done, its body cannot be replayed, its
// retries or the budget are spent, or the wait would outlast its deadline.
// A nil f keeps the built-in choice.
func WithShouldRetry(f func(resp *http.Response, err error) bool) Option {
	return func(s *settings) {
		if f != nil {
			s.shouldRetry = func(resp *http.Response, err error, _ *transport.Info) bool { return f(resp, err) }
		}
	}
}

// WithShouldRetryInfo is [WithShouldRetry] for a rule that also sees the
// [transport.Info] of the request the outcome is of (nil when the request
// was not inspected): its model and endpoint, and what a limiter under the
// decorator read of the answer, which [ShouldRetryInfo] takes the
// answer's x-should-retry from. A nil f keeps the built-in choice.
func WithShouldRetryInfo(f func(resp *http.Response, err error, info *transport.Info) bool) Option {
	return func(s *settings) {
		if f != nil {
			s.shouldRetry = f
		}
	}
}

// WithEvents sets a hook that hears what the decorator does, as events of
// the kind every steady decorator reports ([transport.Event]): a retry
// about to be made (transport.EventRetry, with its wait and whose wait it
// is), a failure not retried (transport.EventGaveUp, with one of the
// Reason* constants) and the end of every request (transport.EventDone).
// It is called on the request's goroutine; a panic in it is recovered and
// the event dropped. Events carry the request's endpoint, never its headers
// or URL. Each WithEvents adds a hook; every hook hears every event.
func WithEvents(fn transport.EventFunc) Option {
	return func(s *settings) { s.onEvent = transport.Events(s.onEvent, fn) }
}

// WithRand sets the source of every jitter: f returns a uniformly random
// integer in [0, n) for n > 0, so tests can make waits deterministic. It
// must be safe for concurrent use when the transport is. The default is
// math/rand/v2's Int64N, which draws from a per-thread generator: no lock
// to contend. A nil f keeps the default.
func WithRand(f func(n int64) int64) Option {
	return func(s *settings) {
		if f != nil {
			s.rand = f
		}
	}
}
