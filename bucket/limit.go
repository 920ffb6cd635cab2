package bucket

import (
	"errors"
	"math"
	"net/http"
	"time"

	"github.com/steadyapi/steady/transport"
)

// LimitOption configures [Limit].
type LimitOption func(*limitConfig)

type limitConfig struct {
	cost         func(*http.Request) int
	ceiling      Rate
	floor        Rate
	defaultPause time.Duration
	pauseSet     bool // WithPause was given: a 429 that names no wait pauses that long
	maxPause     time.Duration
	units        Units
	events       transport.EventFunc // see OnEvent
	grows        *useRule            // see WithUseBasedLimit
	// gates are Keyed's token limiters under this request limiter,
	// innermost first: they are handed every answer's signals before Limit
	// learns from them, and read them there while idle rather than parse
	// the headers again.
	gates []*tokenGate
	// own names the headers of a token limit of its own (its Limit,
	// Remaining and Reset; TokenLimit.Header), which the limiter reads as
	// its token window instead of the window ParseSignals folds.
	own [3]string
	// notLimited tells the 429s that are no refusal of the limit (see
	// WithNotLimited); nil: every 429 is.
	notLimited func(http.Header, []byte) bool
}

// Units says which of the server's windows a bucket's tokens count
// against: requests (the default) or tokens of text.
type Units int8

const (
	// Requests: one token is one request; the server's request window
	// (x-ratelimit-remaining and its OpenAI and Anthropic forms) applies.
	Requests Units = iota
	// TextTokens: one token is a token of text, as a [WithCost] function
	// estimates it; the server's token window (x-tokenlimit-remaining and
	// its forms) applies.
	TextTokens
)

// WithCost sets what a request costs in tokens; the default is 1. A cost of 0
// or less takes nothing: the request does not wait, though its answer is
// still read (a 429 pauses the bucket all the same). For token limits, the
// function estimates the request's tokens of text from its body, which it
// must read through GetBody, never Body.
func WithCost(f func(*http.Request) int) LimitOption {
	return func(c *limitConfig) { c.cost = f }
}

// WithUnits sets which of the server's windows the tokens count against
// (default [Requests]).
func WithUnits(u Units) LimitOption {
	return func(c *limitConfig) { c.units = u }
}

// WithCeiling sets the highest rate the limiter raises the bucket to. The default
// is the bucket's rate when Limit is called (the limit the caller was
// given), or no ceiling for a bucket made with an unknown rate.
func WithCeiling(r Rate) LimitOption {
	return func(c *limitConfig) { c.ceiling = r }
}

// WithFloor sets the lowest rate the limiter lowers the bucket to; the
// default is one token a minute.
func WithFloor(r Rate) LimitOption {
	return func(c *limitConfig) { c.floor = r }
}

// DefaultPause is how long a 429 that names no wait (no Retry-After, no
// reset) pauses the bucket: one second, the window of a server that
// enforces its limit per second.
const DefaultPause = time.Second

// WithPause sets how long a 429 that names no wait pauses the bucket
// (default [DefaultPause]). A duration that is not positive is ignored.
func WithPause(d time.Duration) LimitOption {
	return func(c *limitConfig) {
		if d > 0 {
			c.defaultPause, c.pauseSet = d, true
		}
	}
}

// DefaultMaxPause is the longest a single 429 pauses the bucket: see
// [WithMaxPause].
const DefaultMaxPause = 30 * time.Second

// WithMaxPause caps how long one 429 pauses the bucket (default
// [DefaultMaxPause]). A server that asks for longer (a garbage Retry-After
// of 1e12, a daily window's reset) is asked again after the cap: one more
// 429 then, where trusting the header would refuse every request of the
// key for up to a day. A duration that is not positive is ignored.
func WithMaxPause(d time.Duration) LimitOption {
	return func(c *limitConfig) {
		if d > 0 {
			c.maxPause = d
		}
	}
}

// WithNotLimited sets which 429 answers are not the server's rate limit
// refusing the request, as OpenAI's insufficient_quota is (the account is
// out of credit, which no wait cures): f is given the header of a 429 and
// the first bytes of its body (at most 4 KiB), and reports whether it is
// one. Such an answer neither pauses the bucket nor lowers its rate, and
// teaches the limiter nothing: a caller that keeps asking hears it at
// once every time, and the key goes at its rate once the account is paid
// for. Given to [Keyed] (with [WithLimitOptions]), it holds for its token
// limiters too. nil, the default, takes every 429 for the limit's.
//
// The limiter reads no body: f is given the bytes as whoever reads the
// body reads them (a retry decorator draining it, or the caller), and the
// limiter acts on a 429 once they have told: when f says it is the
// limit's, or its body is read to its end or 4 KiB, or closed. A request
// sent through the limiter before then acts on it first, as the limit's.
func WithNotLimited(f func(h http.Header, body []byte) bool) LimitOption {
	return func(c *limitConfig) { c.notLimited = f }
}

// Limit returns a decorator that takes tokens from b before each attempt
// and learns from every answer. Every RoundTripper it makes shares b and
// what is learnt; use one Limit per bucket.
//
// Before sending, it waits for the request's cost in tokens; a wait that
// cannot end before the request's deadline is refused at once with
// [transport.ErrDeadline] (matching [context.DeadlineExceeded]) and the
// request body is closed, unsent. Every error of a request refused before
// it was sent (that one, [ErrTooLong], its context's end while it waited)
// matches [transport.ErrNotSent]: a breaker around does not count it as
// the model's failure.
//
// From each answer's headers ([transport.ParseSignals]; the body is never
// read) it learns:
//
//   - A 429 pauses the bucket until the server's Retry-After or reset, at
//     most [WithMaxPause]: one refusal stops the whole key. A 429 that
//     names no wait pauses one token's time at the rate (the first such
//     429, at the rate it lowers to; at least 50 ms, at most
//     [DefaultPause], or [WithPause]), twice as long for each
//     resumption in a row refused at once. 429s of requests sent before
//     the pause ended belong to it and change nothing else.
//   - A 429 whose reset is long (1.5 s or more, and a few tokens' time at
//     the rate) names a window: the server refills at once when it opens,
//     and the rate stays. So it does for the short resets of a server that
//     counts nothing, for as long again after the pause: a sliding log
//     frees its window one request at a time, as it accepted them (and,
//     once a server has named a window, a reset shorter than a token's
//     time is waited half a token longer: such a log frees its requests
//     in step with ours, each a hair after we send). A shorter one is
//     otherwise a bucket's next token, and
//     lowers the rate once per pause: refused again within seconds of
//     resuming, the bucket sent above the limit all along and what the
//     server accepted between the two 429s is its limit, exactly; the rate
//     goes to 0.9 of it. With nothing to measure yet it goes to 0.7 of
//     itself, a guess: refused again within 2 s, the limit is measured;
//     not, the rate goes back to 0.95 of the one refused. A server that
//     says nothing (no wait, no counts) and refuses in a chain is
//     measured sooner: it was empty at each refusal, so once a 429 too
//     soon to measure came between and two requests went through, what
//     it accepted is its limit to a request either way, and the measures
//     that follow pool with it while they agree.
//   - After that, answers raise the rate again along a cubic, as TCP CUBIC
//     does: back to the measured limit quickly, slowly around it, faster
//     beyond, never above [WithCeiling]. The cubic's span halves while each
//     429 finds the limit grown and grows to a minute while it finds it
//     where it was, so a fixed limit is probed rarely and one that grows
//     with use is followed ([WithUseBasedLimit] predicts such a limit
//     from the server's own rule instead).
//   - A bucket made with an unknown rate doubles its rate every half
//     second of answers until the first 429 (slow start), no further than
//     two doublings above what the server accepted in the last second.
//   - When the server reports what remains and when it resets
//     (x-ratelimit-remaining/reset, the OpenAI, Anthropic and IETF RateLimit
//     forms), the bucket never grants more than that before the reset,
//     less whatever was granted before the answered request and not
//     answered when it was sent (it may reach the server later), and less
//     whatever was granted since. A server that counts in windows (its
//     resets name the same moment however far apart the requests went)
//     has its window spent at once, whatever the bucket's rate, and the
//     next window too as soon as it opens. A server that is itself a
//     bucket (its resets move with the requests) has its count taken as
//     the bucket's own, which the bucket's rate then refills; its count
//     and reset also say how fast it refills, under which the rate does
//     not stay.
//   - Nothing a server says stalls the key beyond [WithMaxPause]: a count
//     above its own limit is the limit, a limit under one token is none, a
//     window's reset is obeyed at most that long, and counts that said
//     something remained when a 429 came are ignored for ten minutes.
//
// Retrying is not Limit's job: a 429 is returned to the caller, and a retry
// decorator outside Limit sends the next attempt, which waits for the pause.
func Limit(b *Bucket, opts ...LimitOption) transport.Middleware {
	cfg := limitConfig{defaultPause: DefaultPause, maxPause: DefaultMaxPause, floor: PerMinute(1)}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	c := newControl(b, cfg)
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		n, _ := next.(transport.InfoRoundTripper)
		return &limited{c: c, next: next, nextInfo: n}
	}
}

type limited struct {
	c    *control
	next http.RoundTripper
	// nextInfo is next when it is a transport.InfoRoundTripper: each
	// request is handed to it directly, as transport.Forward would,
	// without Forward's look at its type on every request.
	nextInfo transport.InfoRoundTripper
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (l *limited) CloseIdleConnections() { transport.CloseIdleConnections(l.next) }

// RoundTrip waits for the request's tokens, sends it, and learns from the
// answer's headers.
func (l *limited) RoundTrip(req *http.Request) (*http.Response, error) {
	return l.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected), which is handed on with it.
func (l *limited) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	n := 1
	if l.c.cfg.cost != nil {
		n = l.c.cfg.cost(req)
	}
	return l.roundTripCost(req, info, n)
}

// roundTripCost is RoundTripInfo for a request whose cost, n tokens, the
// caller knows (a token gate, which charged it).
func (l *limited) roundTripCost(req *http.Request, info *transport.Info, n int) (*http.Response, error) {
	cost := float64(max(n, 0))
	if l.c.nheld.Load() > 0 {
		l.c.applyHeld() // a 429 its body has not told of yet is the limit's
	}
	var asked time.Time
	if l.c.cfg.events != nil { // the clock is read for the hook only
		asked = time.Now()
	}
	tk, sent, err := l.c.b.send(req.Context(), cost)
	if err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, transport.NotSent(err)
	}
	if l.c.cfg.events != nil {
		l.c.waited(req, sent.Sub(asked))
	}
	_, before := info.AnsweredAt()
	var resp *http.Response
	if l.nextInfo != nil {
		resp, err = l.nextInfo.RoundTripInfo(req, info)
	} else {
		resp, err = transport.Forward(l.next, req, info)
	}
	l.c.b.answered(cost)
	if err != nil {
		if resp != nil { // a response and an error: keep the contract
			transport.Drain(resp)
		}
		if errors.Is(err, transport.ErrNotSent) || errors.Is(err, transport.ErrDeadline) || errors.Is(err, ErrTooLong) {
			// Refused inside (by a token limit under this one, or any
			// decorator that marks its refusal transport.NotSent or
			// refuses for the deadline) before it was sent: the tokens
			// go to the waiters behind.
			l.c.b.correct(-cost)
		}
		return nil, err
	}
	// The answer's time: a limiter under this one timed it already, or
	// it is read here, for the decorators above too.
	now, answers := info.AnsweredAt()
	if answers == before {
		now = answerTime(sent)
		info.SetAnsweredAt(now)
	}
	l.c.observe(req, info, resp, sent, now, tk, cost, true)
	return resp, nil
}

// answerTime is the time of an answer to a request sent at sent, read as
// the time elapsed since: the monotonic clock alone, which costs half of
// time.Now. (The wall time it gives differs from time.Now's only if the
// wall clock was stepped while the request was out.)
func answerTime(sent time.Time) time.Time { return sent.Add(time.Since(sent)) }

// clampRate bounds a rate in tokens a second to [lo, hi] and to a finite
// value.
func clampRate(r, lo, hi float64) float64 {
	r = min(max(r, lo), hi)
	if math.IsNaN(r) || r <= 0 {
		return lo
	}
	return r
}
