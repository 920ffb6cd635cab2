package retry

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/steadyapi/steady/transport"
)

// Defaults of a zero [Policy].
const (
	// DefaultMaxRetries is the retries after the first attempt: the
	// provider guide's 4.
	DefaultMaxRetries = 4
	// DefaultBaseDelay is the backoff before the first retry, before jitter.
	DefaultBaseDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps the backoff, before jitter.
	DefaultMaxDelay = 8 * time.Second
	// DefaultMaxServerWait is the longest server-directed wait honoured.
	DefaultMaxServerWait = 60 * time.Second
	// DefaultBudget is the share of recent requests that retries may add.
	DefaultBudget = 0.2
	// DefaultMinRetriesPerSecond is the retry budget's floor.
	DefaultMinRetriesPerSecond = 10
)

// BudgetWindow is the span of recent traffic the retry budget looks at.
const BudgetWindow = 10 * time.Second

// Policy configures [New]. Its zero value is valid: every zero field takes
// the default documented beside it.
type Policy struct {
	// MaxRetries is how many times a request is sent again after the first
	// attempt. 0 means DefaultMaxRetries (4, so at most 5 attempts in all).
	// A negative value means no retries at all: the decorator then only
	// passes requests through (and still closes bodies and wraps errors).
	MaxRetries int

	// BaseDelay and MaxDelay shape the backoff used when the server directs
	// no wait: before retry n the decorator waits a uniformly random time in
	// [0, min(MaxDelay, BaseDelay·2^(n-1))) ("full jitter"), which spreads
	// clients that failed together instead of having them retry in step.
	// 0 means DefaultBaseDelay (500 ms) and DefaultMaxDelay (8 s).
	BaseDelay time.Duration
	MaxDelay  time.Duration

	// MaxServerWait caps the waits the server directs (retry-after-ms,
	// Retry-After, or x-ratelimit-reset on a 429). A server that asks for
	// longer gets its response handed back at once, without sleeping: a
	// caller is better served by the real status than by an hour-long
	// stall. A server-directed wait is stretched by a positive jitter of up
	// to 10% (at least 50 ms, at most 1 s) so that clients told to come back
	// at the same instant do not, and never shortened; the jitter is cut
	// back, never the wait, when it would overrun the caller's deadline.
	// 0 means DefaultMaxServerWait (60 s); negative means any
	// server-directed wait above zero returns the response at once.
	MaxServerWait time.Duration

	// Budget bounds retries across all requests through one decorator (one
	// call of [New]), in the manner of Finagle's and Envoy's retry budgets,
	// so that an outage cannot multiply the traffic sent to a struggling
	// server. Over the last [BudgetWindow] (10 s, counted in ten one-second
	// slots), retries may number at most
	//
	//	max(Budget × requests, MinRetriesPerSecond × 10)
	//
	// where requests counts calls of RoundTrip, not attempts. The floor lets
	// a quiet client still retry; the ratio caps a busy one at Budget more
	// traffic. When the budget is spent, the last response (or error) is
	// returned instead of retrying. Counting costs the happy path one atomic
	// add; the budget is checked only before a retry, and may be overshot by
	// the few retries that race for its last place.
	// 0 means DefaultBudget (0.2, 20%); negative disables the budget.
	Budget float64

	// MinRetriesPerSecond is the budget's floor (see Budget). 0 means
	// DefaultMinRetriesPerSecond (10); negative means no floor.
	MinRetriesPerSecond float64

	// ReplayLimit is the most of a request body, without GetBody, that is
	// buffered so it can be sent again (see transport.Replay). A larger body
	// is sent once and not retried. 0 means transport.DefaultReplayLimit
	// (32 MiB); negative means never buffer.
	ReplayLimit int64

	// ShouldRetry, when set, replaces the built-in choice of which outcomes
	// are retried ([ShouldRetry]); an override can call the built-in one and
	// adjust. It must not read resp.Body. Whatever it says, a request is not
	// retried once its context is done, its body cannot be replayed, its
	// retries or the budget are spent, or the wait would outlast its
	// deadline.
	ShouldRetry func(resp *http.Response, err error) bool

	// OnRetry, when set, is called before each retry's wait, on the
	// request's goroutine; it should return quickly. It is meant for logs
	// and metrics, and sees no request headers (so never Authorization).
	OnRetry func(RetryEvent)

	// OnEvent, when set, hears what the decorator does, as events of the
	// kind every steady decorator reports ([transport.Event]): a retry
	// about to be made (transport.EventRetry, beside OnRetry), a failure not
	// retried (transport.EventGaveUp, with one of the Reason* constants) and
	// the end of every request (transport.EventDone). It is called on the
	// request's goroutine; a panic in it is recovered and the event dropped.
	// Events carry the request's endpoint, never its headers or URL.
	OnEvent transport.EventFunc

	// Rand returns a uniformly random integer in [0, n) for n > 0; it draws
	// every jitter, so tests can make waits deterministic. It must be safe
	// for concurrent use when the transport is. nil means math/rand/v2's
	// Int64N, which draws from a per-thread generator: no lock to contend.
	Rand func(n int64) int64
}

// RetryEvent describes one retry about to happen, for [Policy.OnRetry]. It
// holds no request headers and no query string, so no key leaks into a log.
type RetryEvent struct {
	Method string // the request's method
	URL    string // scheme, host and path of the request; no user info, no query

	// Attempt is the number of the attempt that failed, 1 for the first;
	// the retry about to be made is attempt Attempt+1.
	Attempt int

	// Wait is how long the decorator sleeps before the retry.
	Wait time.Duration

	// ServerDirected reports whether Wait follows the server's ask (plus
	// jitter) rather than the backoff.
	ServerDirected bool

	// Status is the failed attempt's HTTP status, or 0 when it ended in Err.
	Status int

	// Err is the failed attempt's transport error, or nil when it had a
	// response.
	Err error
}

// settings is a Policy with the defaults filled in.
type settings struct {
	maxRetries    int
	baseDelay     time.Duration
	maxDelay      time.Duration
	maxServerWait time.Duration
	replayLimit   int64
	shouldRetry   func(*http.Response, error) bool
	onRetry       func(RetryEvent)
	onEvent       transport.EventFunc
	rand          func(int64) int64
}

func (p Policy) settings() settings {
	s := settings{
		maxRetries:    p.MaxRetries,
		baseDelay:     p.BaseDelay,
		maxDelay:      p.MaxDelay,
		maxServerWait: p.MaxServerWait,
		replayLimit:   p.ReplayLimit,
		shouldRetry:   p.ShouldRetry,
		onRetry:       p.OnRetry,
		onEvent:       p.OnEvent,
		rand:          p.Rand,
	}
	switch {
	case s.maxRetries == 0:
		s.maxRetries = DefaultMaxRetries
	case s.maxRetries < 0:
		s.maxRetries = 0
	}
	if s.baseDelay <= 0 {
		s.baseDelay = DefaultBaseDelay
	}
	if s.maxDelay <= 0 {
		s.maxDelay = DefaultMaxDelay
	}
	switch {
	case s.maxServerWait == 0:
		s.maxServerWait = DefaultMaxServerWait
	case s.maxServerWait < 0:
		s.maxServerWait = 0
	}
	if s.maxRetries == 0 {
		s.replayLimit = -1 // nothing will be sent twice: do not buffer
	}
	if s.shouldRetry == nil {
		s.shouldRetry = ShouldRetry
	}
	if s.rand == nil {
		s.rand = rand.Int64N
	}
	return s
}
