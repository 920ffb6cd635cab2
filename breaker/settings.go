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

// The defaults of [Settings], chosen for a model that answers 503 in bursts
// (a provider out of capacity for seconds to minutes) behind a retry
// decorator whose every attempt the breaker counts.
const (
	// DefaultConsecutiveFailures is gobreaker's own rule (it trips after
	// more than 5): five attempts in a row answered 5xx is not noise, and at
	// 60 requests per minute it trips within seconds. Polly has no such rule.
	DefaultConsecutiveFailures = 5

	// DefaultFailureRatio and DefaultMinThroughput catch a model that fails
	// most requests without five in a row. Polly's 10% of at least 100
	// requests in 30 s would trip on the ordinary 503s retries absorb, and
	// would never trip below 200 requests per minute, where most accounts
	// run a model; half of 20 fits both.
	DefaultFailureRatio  = 0.5
	DefaultMinThroughput = 20

	// DefaultSamplingWindow is Polly's: failures older than 30 s no longer
	// count, so a healthy model does not trip on a morning's worth of
	// scattered 503s.
	DefaultSamplingWindow = 30 * time.Second

	// DefaultTimeout is how long a breaker stays open when the server gave
	// no Retry-After. Polly's 5 s break is shorter than a capacity incident
	// and probes it a dozen times a minute; gobreaker's 60 s keeps traffic
	// off a recovered model for a minute. 30 s probes a 3-minute incident
	// about six times and returns traffic within 30 s of recovery.
	DefaultTimeout = 30 * time.Second

	// DefaultMaxRetryAfter caps the server's Retry-After as the open period:
	// a server that asks for an hour gets probed after five minutes.
	DefaultMaxRetryAfter = 5 * time.Minute

	// DefaultHalfOpenProbes is how many requests a half-open breaker lets
	// through; it closes once all of them succeed and reopens at the first
	// failure. One probe (gobreaker's and Polly's default) closes on a lucky
	// answer in the middle of a burst; three in a row is better evidence and
	// still at most three requests spent on a model that is down.
	DefaultHalfOpenProbes = 3

	// DefaultIdleTTL and DefaultMaxKeys bound the breakers kept: one not
	// used for 10 minutes is dropped (it is closed again by then, as no open
	// period outlasts DefaultMaxRetryAfter), and at most 1024 are kept, the
	// least recently used giving way.
	DefaultIdleTTL = 10 * time.Minute
	DefaultMaxKeys = 1024
)

// minOpen is the shortest open period; a Retry-After of 0 waits this long.
// It is also gobreaker's own Timeout, see openUntil in breaker.go.
const minOpen = time.Second

// Settings configures [New]. The zero value is valid: every zero field takes
// the default named beside it, whose reasons are given with the constants.
type Settings struct {
	// Key names the breaker a request is counted by. model is the
	// top-level "model" of the request's JSON body, "" when it has none.
	// nil means the request's host and model (req.URL.Host + " " + model),
	// so that one overloaded model does not stop the others. The key
	// appears in errors and in OnStateChange: it must not contain the API
	// key or any other secret.
	Key func(req *http.Request, model string) string

	// ConsecutiveFailures trips the breaker after that many failures in a
	// row. 0 means DefaultConsecutiveFailures.
	ConsecutiveFailures uint32

	// FailureRatio trips the breaker when at least that share of the
	// requests completed in the SamplingWindow failed, once there were at
	// least MinThroughput of them. 0 means DefaultFailureRatio; a ratio
	// above 1 turns the rule off.
	FailureRatio float64

	// MinThroughput: see FailureRatio. 0 means DefaultMinThroughput.
	MinThroughput uint32

	// SamplingWindow is the rolling window the counts cover while closed,
	// kept in ten buckets. 0 means DefaultSamplingWindow.
	SamplingWindow time.Duration

	// Timeout is how long the breaker stays open before it lets probes
	// through, when the failure that opened it carried no Retry-After. When
	// it did, the breaker stays open that long instead, between one second
	// (or Timeout, if shorter) and MaxRetryAfter. 0 means DefaultTimeout.
	Timeout time.Duration

	// MaxRetryAfter caps the Retry-After taken as the open period. 0 means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration

	// HalfOpenProbes is how many requests a half-open breaker lets
	// through; the others fail fast. It closes when all of them succeed.
	// 0 means DefaultHalfOpenProbes.
	HalfOpenProbes uint32

	// IsFailure tells a failure from a success. nil counts as failures the
	// statuses 500, 502, 503, 504 and 529 and every error; every other
	// status (2xx to 4xx, 429 included: rate is the limiter's business, not
	// the model's health) is a success. Whatever IsFailure says, a request
	// whose context is done, or whose error matches context.Canceled,
	// context.DeadlineExceeded or transport.ErrModelUnavailable (it never
	// reached the server), counts as neither.
	IsFailure func(resp *http.Response, err error) bool

	// OnStateChange, if set, is called when a key's breaker changes state,
	// for logs and metrics. It is called while that breaker is locked, on
	// the goroutine of the request that caused the change: it must be quick
	// and must not send requests through the same middleware. A panic in it
	// is recovered and dropped, so the request that caused the change still
	// gets its answer.
	OnStateChange func(key string, from, to State)

	// OnEvent, if set, hears the same changes as [transport.Event]s of
	// kind transport.EventBreaker, the kind every steady decorator reports:
	// From and To are the states ("closed", "open", "half-open"), Model and
	// Endpoint those of the request that made the breaker (with the default
	// Key, every request of a breaker has that model). It is called where
	// OnStateChange is, after it, with the same constraints; a panic in it
	// is recovered and the event dropped.
	OnEvent transport.EventFunc

	// IdleTTL is how long a key's breaker is kept after its last request
	// (up to half as long again: idleness is checked by sweeps that run
	// at most every IdleTTL/2, on requests). A breaker still open is kept.
	// 0 means DefaultIdleTTL.
	IdleTTL time.Duration

	// MaxKeys bounds the breakers kept. 0 means DefaultMaxKeys.
	MaxKeys int

	// BodyLimit is the largest request body read to find the model (see
	// transport.RequestModel). 0 means transport.DefaultReplayLimit.
	BodyLimit int64
}

func (s Settings) withDefaults() Settings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = DefaultFailureRatio
	}
	if s.MinThroughput == 0 {
		s.MinThroughput = DefaultMinThroughput
	}
	if s.SamplingWindow <= 0 {
		s.SamplingWindow = DefaultSamplingWindow
	}
	if s.Timeout <= 0 {
		s.Timeout = DefaultTimeout
	}
	if s.MaxRetryAfter <= 0 {
		s.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if s.HalfOpenProbes == 0 {
		s.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if s.IdleTTL <= 0 {
		s.IdleTTL = DefaultIdleTTL
	}
	if s.MaxKeys <= 0 {
		s.MaxKeys = DefaultMaxKeys
	}
	return s
}

// readyToTrip is gobreaker's ReadyToTrip for these settings.
func (s *Settings) readyToTrip(c gobreaker.Counts) bool {
	if c.ConsecutiveFailures >= s.ConsecutiveFailures {
		return true
	}
	done := c.TotalSuccesses + c.TotalFailures
	return done >= s.MinThroughput && float64(c.TotalFailures) >= s.FailureRatio*float64(done)
}
