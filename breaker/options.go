package breaker

import (
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/steadyapi/steady/transport"
)

// State is the state of one breaker: closed (requests flow), open (they
// fail fast) or half-open (a few probes test the model). It is gobreaker's.
type State = gobreaker.State

// The states of a breaker.
const (
	StateClosed   = gobreaker.StateClosed
	StateHalfOpen = gobreaker.StateHalfOpen
	StateOpen     = gobreaker.StateOpen
)

// The defaults of [New], chosen for a model that answers 503 in bursts (a
// provider out of capacity for seconds to minutes) behind a retry decorator
// whose every attempt the breaker counts. Each is changed by the option
// named beside it.
const (
	// DefaultConsecutiveFailures trips a breaker after five failures in a
	// row ([WithConsecutiveFailures]): five attempts in a row answered 5xx
	// is not noise, and at 60 requests per minute it trips within seconds.
	// (gobreaker's own default trips after more than five; Polly has no
	// such rule.)
	DefaultConsecutiveFailures = 5

	// DefaultFailureRatio and DefaultMinThroughput catch a model that fails
	// most requests without five in a row ([WithFailureRatio]). Polly's 10%
	// of at least 100 requests in 30 s would trip on the ordinary 503s
	// retries absorb, and would never trip below 200 requests per minute,
	// where most accounts run a model; half of 20 fits both.
	DefaultFailureRatio  = 0.5
	DefaultMinThroughput = 20

	// DefaultSamplingWindow is Polly's ([WithSamplingWindow]): failures
	// older than 30 s no longer count, so a healthy model does not trip on
	// a morning's worth of scattered 503s.
	DefaultSamplingWindow = 30 * time.Second

	// DefaultTimeout is how long a breaker stays open when the server gave
	// no Retry-After ([WithTimeout]). Polly's 5 s break is shorter than a
	// capacity incident and probes it a dozen times a minute; gobreaker's
	// 60 s keeps traffic off a recovered model for a minute. 30 s probes a
	// 3-minute incident about six times and returns traffic within 30 s of
	// recovery.
	DefaultTimeout = 30 * time.Second

	// DefaultMaxRetryAfter caps the server's Retry-After as the open period
	// ([WithMaxRetryAfter]): a server that asks for an hour gets probed
	// after five minutes.
	DefaultMaxRetryAfter = 5 * time.Minute

	// DefaultHalfOpenProbes is how many requests a half-open breaker lets
	// through ([WithHalfOpenProbes]); it closes once all of them succeed
	// and reopens at the first failure. One probe (gobreaker's and Polly's
	// default) closes on a lucky answer in the middle of a burst; three in
	// a row is better evidence and still at most three requests spent on a
	// model that is down.
	DefaultHalfOpenProbes = 3

	// DefaultProbeWait is how long a half-open breaker waits for a probe's
	// answer before it stops counting that probe as out and lets another
	// through in its place ([WithProbeWait]). A probe that hangs (a base
	// transport with no deadline, a server that never answers) would
	// otherwise hold its model's requests back for as long as it hangs;
	// waited for as long as an open period without a Retry-After
	// ([DefaultTimeout]), it costs the model no more than one more such
	// period, and a slow answer (a long completion) is still waited for
	// and counted when it comes.
	DefaultProbeWait = 30 * time.Second

	// DefaultIdleTTL and DefaultMaxKeys bound the breakers kept
	// ([WithIdleTTL], [WithMaxKeys]): one not used for 10 minutes is
	// dropped (it is closed again by then, as no open period outlasts
	// DefaultMaxRetryAfter), and at most 1024 are kept, the least recently
	// used closed one giving way.
	DefaultIdleTTL = 10 * time.Minute
	DefaultMaxKeys = 1024
)

// minOpen is the shortest open period; a Retry-After of 0 waits this long.
// gobreaker's own Timeout is set to half of it (or of a shorter timeout or
// cap), below every open period: see entry in breaker.go.
const minOpen = time.Second

// Option configures [New]. Options not given keep the defaults documented
// with each.
type Option func(*settings)

// settings is what the options set, with the defaults filled in.
type settings struct {
	key                 func(req *http.Request, model string) string
	consecutiveFailures uint32 // 0: the rule is off
	failureRatio        float64
	minThroughput       uint32
	ratioOff            bool
	samplingWindow      time.Duration
	timeout             time.Duration
	maxRetryAfter       time.Duration
	halfOpenProbes      uint32
	probeWait           time.Duration
	isFailure           func(resp *http.Response, err error) bool
	events              transport.EventFunc
	idleTTL             time.Duration
	maxKeys             int
	bodyLimit           int64
}

func newSettings(opts []Option) settings {
	s := settings{
		consecutiveFailures: DefaultConsecutiveFailures,
		failureRatio:        DefaultFailureRatio,
		minThroughput:       DefaultMinThroughput,
		samplingWindow:      DefaultSamplingWindow,
		timeout:             DefaultTimeout,
		maxRetryAfter:       DefaultMaxRetryAfter,
		halfOpenProbes:      DefaultHalfOpenProbes,
		probeWait:           DefaultProbeWait,
		idleTTL:             DefaultIdleTTL,
		maxKeys:             DefaultMaxKeys,
	}
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
	}
	return s
}

// WithKey sets what names the breaker a request is counted by. model is the
// top-level "model" of the request's JSON body, "" when it has none. The
// default is the request's host and model (req.URL.Host + " " + model), so
// that one overloaded model does not stop the others. The key appears in
// errors and events: it must not contain the API key or any other secret.
// A key longer than [transport.MaxKeyLen] is shortened with
// [transport.BoundKey]. A nil f keeps the default.
func WithKey(f func(req *http.Request, model string) string) Option {
	return func(s *settings) { s.key = f }
}

// WithConsecutiveFailures trips a breaker after n failures in a row
// (default [DefaultConsecutiveFailures]). 0 turns this rule off, leaving
// [WithFailureRatio]'s.
func WithConsecutiveFailures(n uint32) Option {
	return func(s *settings) { s.consecutiveFailures = n }
}

// WithFailureRatio trips a breaker when at least ratio of the requests
// completed in the sampling window failed, once there were at least
// minThroughput of them (defaults [DefaultFailureRatio] and
// [DefaultMinThroughput]). A ratio that is not in (0, 1] turns this rule
// off, leaving [WithConsecutiveFailures]'s.
func WithFailureRatio(ratio float64, minThroughput uint32) Option {
	return func(s *settings) {
		s.failureRatio, s.minThroughput = ratio, minThroughput
		s.ratioOff = !(ratio > 0 && ratio <= 1)
	}
}

// WithSamplingWindow sets the rolling window the failure ratio covers while
// a breaker is closed, kept in ten buckets (default
// [DefaultSamplingWindow]); a request counts in the bucket of the instant
// it ends. A window that is not positive keeps the default; one shorter
// than two nanoseconds is taken as two, and one longer than a century as a
// century.
func WithSamplingWindow(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.samplingWindow = min(max(d, minSamplingWindow), maxSamplingWindow)
		}
	}
}

// The bounds of a sampling window. gobreaker keeps a window of one bucket
// (one nanosecond) as a fixed window, started again by the first request
// after it ends, which the successes counted beside it (see report) do not
// follow; two buckets make it a rolling one. gobreaker rounds the window up
// to whole buckets in a Duration, which overflows past about 265 years (a
// window of math.MaxInt64 panics); a century is forever to a breaker.
const (
	minSamplingWindow = 2 * time.Nanosecond
	maxSamplingWindow = 100 * 365 * 24 * time.Hour
)

// WithTimeout sets how long a breaker stays open before it lets probes
// through, when the failure that opened it carried no Retry-After (default
// [DefaultTimeout]). When it did, the breaker stays open that long instead,
// between one second (or the timeout, if shorter) and [WithMaxRetryAfter]'s
// cap. A timeout that is not positive keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithMaxRetryAfter caps the Retry-After taken as the open period (default
// [DefaultMaxRetryAfter]). A cap that is not positive keeps the default.
func WithMaxRetryAfter(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.maxRetryAfter = d
		}
	}
}

// WithHalfOpenProbes sets how many requests a half-open breaker lets
// through; the others fail fast, and it closes when all of them succeed
// (default [DefaultHalfOpenProbes]). A probe that has not answered within
// [WithProbeWait]'s wait gives its place to another. 0 keeps the default:
// a breaker that let no probe through would never close.
func WithHalfOpenProbes(n uint32) Option {
	return func(s *settings) {
		if n > 0 {
			s.halfOpenProbes = n
		}
	}
}

// WithProbeWait sets how long a half-open breaker counts a probe as out
// without an answer (default [DefaultProbeWait]). A probe out that long
// is then counted as neither success nor failure, as one whose caller
// gave up is, and the next request goes through in its place; so a probe
// that hangs holds its model's requests back for d at most, not for as
// long as it hangs. Its answer, when it comes while the breaker is still
// half-open, counts: a failure opens the breaker again, a success counts
// towards closing it. A wait that is not positive keeps the default.
func WithProbeWait(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.probeWait = d
		}
	}
}

// WithIsFailure sets what tells a failure from a success. The default
// counts as failures the statuses 500, 502, 503, 504 and 529 and every
// error; every other status (2xx to 4xx, 429 included: rate is the
// limiter's business, not the model's health) is a success. Whatever f
// says, a request whose context is done, or whose error matches
// context.Canceled, transport.ErrDeadline (a wait under the breaker that
// the deadline could not hold), transport.ErrNotSent (a limiter under the
// breaker refused it before sending it) or transport.ErrModelUnavailable
// (it never reached the server), counts as neither; so does an error of a request net/http refuses to send for a
// fault of its own (a header or trailer field that is not valid HTTP, a
// method that is not a token), which one caller's bad input could
// otherwise repeat until the model's breaker opened for every caller. A
// nil f keeps the default. An error that matches context.DeadlineExceeded
// while the request's context is alive is the transport's own timeout
// (net/http's ResponseHeaderTimeout, a dial that timed out): the model
// did not answer in time, and that counts.
func WithIsFailure(f func(resp *http.Response, err error) bool) Option {
	return func(s *settings) { s.isFailure = f }
}

// WithEvents sets a hook that hears each change of a breaker's state, as
// [transport.Event]s of kind transport.EventBreaker, the kind every steady
// decorator reports: From and To are the states ("closed", "open",
// "half-open"), Model and Endpoint those of the request that made the
// breaker (with the default key, every request of a breaker has that
// model). It is called while that breaker is locked, on the goroutine of
// the request that caused the change: it must be quick and must not send
// requests through the same middleware. A panic in it is recovered and
// the event dropped, so the request that caused the change still gets its
// answer. Each WithEvents adds a hook; every hook hears every event.
func WithEvents(fn transport.EventFunc) Option {
	return func(s *settings) { s.events = transport.Events(s.events, fn) }
}

// WithIdleTTL sets how long a key's breaker is kept after the last of its
// requests ended (one it refused included), or after it was made (up to
// half as long again: idleness is checked by sweeps that run at most every
// ttl/2, on answers); a breaker
// still open is kept (default [DefaultIdleTTL]). A ttl that is not
// positive keeps the default.
func WithIdleTTL(ttl time.Duration) Option {
	return func(s *settings) {
		if ttl > 0 {
			s.idleTTL = ttl
		}
	}
}

// WithMaxKeys bounds the breakers kept (default [DefaultMaxKeys]). When
// that many are kept, the least recently used closed breaker (the one whose
// last request ended the longest ago) gives way to a new key; an open or half-open breaker never does (its model would get
// traffic again), and when every kept breaker is open, new keys share one
// overflow breaker until one closes or goes idle. n below 1 keeps the
// default.
func WithMaxKeys(n int) Option {
	return func(s *settings) {
		if n >= 1 {
			s.maxKeys = n
		}
	}
}

// WithBodyLimit sets the largest request body read to find the model (see
// transport.RequestModel; default transport.DefaultReplayLimit). A limit
// that is not positive keeps the default.
func WithBodyLimit(n int64) Option {
	return func(s *settings) {
		if n > 0 {
			s.bodyLimit = n
		}
	}
}

// readyToTrip is gobreaker's ReadyToTrip for these settings.
func (s *settings) readyToTrip(c gobreaker.Counts) bool {
	if s.consecutiveFailures > 0 && c.ConsecutiveFailures >= s.consecutiveFailures {
		return true
	}
	if s.ratioOff {
		return false
	}
	done := c.TotalSuccesses + c.TotalFailures
	return done >= s.minThroughput && float64(c.TotalFailures) >= s.failureRatio*float64(done)
}

// buckets is the sampling window's bucket period and count, as gobreaker
// makes them from Interval and BucketPeriod: a tenth of the window each
// (rounded up, so that there are at most ten), the window rounded up to
// whole buckets.
func (s *settings) buckets() (period time.Duration, n int) {
	period = (s.samplingWindow + maxBuckets - 1) / maxBuckets
	return period, int((s.samplingWindow + period - 1) / period)
}
