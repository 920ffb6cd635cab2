package conformance

import (
	"time"
)

// Limit is the rate limit of one endpoint, applied to each API key on its
// own. The zero Limit limits nothing.
//
// A limit counts requests (RPM) and, beside them, tokens (TPM), each by
// the same [Algorithm]: Together's per-second bucket by default, or one of
// the forms other servers use (nginx's limit_req, a sliding-window log,
// fixed windows). A request passes when both counts have room; a refused
// request costs nothing.
type Limit struct {
	// RPM is the number of requests allowed per minute; 0 means no request
	// limit (unless Dynamic). Under the window algorithms it sets each
	// window's quota: RPM × Window / 1 minute requests (600 RPM over 10 s
	// windows is 100 requests a window).
	RPM float64
	// Algorithm is how RPM and TPM are enforced; the zero value,
	// [DefaultAlgorithm], is what Window says.
	Algorithm Algorithm
	// Window is, under [DefaultAlgorithm], the older way to choose the
	// algorithm: time.Minute means fixed one-minute windows aligned on the
	// clock's minutes ([FixedWindow]); anything else, Together's
	// per-second bucket ([TokenBucket]). Under [SlidingLog] and
	// [FixedWindow] it is the window's length, 0 meaning a minute. The
	// bucket algorithms do not use it.
	Window time.Duration
	// Burst is the most requests the bucket algorithms ([TokenBucket],
	// [LeakyBucket]) let through at once: the bucket's capacity. 0 means
	// one second of the rate, at least 1 (600 RPM: 10), as Together
	// enforces; 1 is no burst at all, where two requests closer than
	// 1/rate are never both accepted. nginx's `limit_req burst=B nodelay`
	// is a Burst of B+1.
	Burst float64
	// TokenBurst is Burst for the token count: the tokens a bucket holds;
	// 0 means one second of TPM, at least 1.
	TokenBurst float64
	// OutputTPM limits the tokens generated per minute apart, as Anthropic
	// does (its OTPM): with it, TPM counts the prompt's tokens alone (the
	// ITPM) and OutputTPM the answer's, each by the same algorithm.
	// OutputTokenBurst is its TokenBurst. 0 means no output limit, and TPM
	// counts both.
	OutputTPM, OutputTokenBurst float64
	// FromFirstRequest makes [FixedWindow]'s windows start with a key's
	// requests, as express-rate-limit's memory store does: a window opens
	// at the first request accepted after the previous one ended and lasts
	// Window. Otherwise windows are aligned on the clock: [k×Window,
	// (k+1)×Window) of Unix time.
	FromFirstRequest bool
	// TPM is the number of tokens allowed per minute, enforced by the same
	// algorithm as RPM; 0 means no token limit. A request's tokens are its
	// text's characters divided by 4, rounded up (chat: every message's
	// content; completions and images: the prompt; embeddings: every
	// input; a prompt or input given as token ids, one token an id), plus
	// its max_tokens. A request larger than the bucket needs
	// the bucket full, or an empty window.
	TPM float64
	// Dynamic makes the request limit Together's dynamic one: the
	// effective RPM is twice the key's successful requests per minute over
	// a span (see Span), never below Base nor above Cap. RPM is then only
	// the default Base.
	Dynamic bool
	// Span is what a dynamic limit averages the key's successes over while
	// the key is younger than an hour; Together's documentation leaves it
	// open. The zero value is [SpanHour].
	Span Span
	// Base and Cap bound the dynamic RPM. Base 0 means RPM, or 60 when RPM
	// is 0 too (a new account's limit); Cap 0 means no upper bound.
	Base, Cap float64
}

// Algorithm is how a [Limit] counts what a key sends.
type Algorithm uint8

const (
	// DefaultAlgorithm is [TokenBucket], or [FixedWindow] aligned on the
	// clock's minutes when [Limit.Window] is time.Minute.
	DefaultAlgorithm Algorithm = iota
	// TokenBucket enforces the limit per second, as Together does: a
	// bucket that refills at RPM/60 requests a second, holds
	// [Limit.Burst] and starts full. 60 RPM is one request a second, and
	// a burst of 60 is refused. Time is exact to the nanosecond.
	TokenBucket
	// LeakyBucket is nginx's limit_req with nodelay
	// (ngx_http_limit_req_module): the same bucket as TokenBucket, counted
	// as nginx counts it. Its clock reads whole milliseconds; a key's
	// excess (the requests it sent beyond the rate, in thousandths of a
	// request) shrinks by ⌊rate × elapsed ms / 1000⌋ thousandths, where
	// rate is RPM×1000/60 rounded down (nginx's "r/m" and "r/s" both end
	// up there), and grows by 1000 with each request; a request passes
	// when the excess it would leave, never below 0, is at most
	// (Burst−1)×1000. The first request of a key always passes. Tokens are
	// counted the same way, each token a request. A refusal is a 429, as
	// with `limit_req_status 429` (nginx's default is 503).
	LeakyBucket
	// SlidingLog allows at most RPM × Window / 1 minute requests in any
	// Window that ends now (600 per rolling 60 s): a log of the accepted
	// requests, each forgotten Window after it passed.
	SlidingLog
	// FixedWindow allows at most RPM × Window / 1 minute requests in each
	// window, aligned on the clock or started by the key's first request
	// ([Limit.FromFirstRequest]). A request larger than the quota passes
	// into an empty window.
	FixedWindow
)

// String names a for tables and flags: "bucket", "nginx", "sliding",
// "fixed", or "default".
func (a Algorithm) String() string {
	switch a {
	case TokenBucket:
		return "bucket"
	case LeakyBucket:
		return "nginx"
	case SlidingLog:
		return "sliding"
	case FixedWindow:
		return "fixed"
	}
	return "default"
}

// Span is what a dynamic limit averages a key's successes over while the
// key is younger than an hour. From its first hour on, both spans are the
// past hour.
type Span uint8

const (
	// SpanHour is the past hour whatever the key's age: the limit is twice
	// the successes of the past hour (the current minute included, by
	// whole clock minutes) divided by 60, per minute. A new key stays at
	// its base for half an hour of steady use at the base.
	SpanHour Span = iota
	// SpanInUse is the time the key has been in use: twice its successes
	// since its first success, divided by the minutes since then (at least
	// one), per minute. A key used steadily outgrows its base within its
	// first minute.
	SpanInUse
)

// resolved is a limit's algorithm with Window's older meaning applied.
func (l *Limit) resolved() Algorithm {
	if l.Algorithm != DefaultAlgorithm {
		return l.Algorithm
	}
	if l.Window == time.Minute {
		return FixedWindow
	}
	return TokenBucket
}

// window is the length of the windows of SlidingLog and FixedWindow.
func (l *Limit) window() time.Duration {
	if l.Window <= 0 {
		return time.Minute
	}
	return l.Window
}

// Types of a 429's error body: which limit refused the request.
const (
	ErrorRequestLimited = "dynamic_request_limited"
	ErrorTokenLimited   = "dynamic_token_limited"
)

// keyLimits is the state of one key's limits on one endpoint.
type keyLimits struct {
	req, tok, out limitMeter
	// successes[i] counts the successful requests of minute minutes[i]
	// (Unix minutes), a ring over the past hour: a few hundred bytes
	// however long the run, where a list of arrivals would grow forever.
	successes [60]int32
	minutes   [60]int64
	// firstSuccess (Unix nanoseconds) and total are what SpanInUse
	// averages over; used says whether there was a success yet.
	firstSuccess int64
	total        int64
	used         bool
}

// rpm is the request limit in force at now: Limit.RPM, or the dynamic one.
func (l *keyLimits) rpm(lim *Limit, now int64) float64 {
	if !lim.Dynamic {
		return lim.RPM
	}
	base := lim.Base
	if base == 0 {
		base = lim.RPM
	}
	if base == 0 {
		base = 60
	}
	var r float64
	if lim.Span == SpanInUse && l.used && now-l.firstSuccess < int64(time.Hour) {
		minutes := max(float64(now-l.firstSuccess)/float64(time.Minute), 1)
		r = float64(l.total) * 2 / minutes
	} else {
		idx := now / int64(time.Minute)
		var sum int64
		for i, m := range l.minutes {
			if m > idx-60 && m <= idx {
				sum += int64(l.successes[i])
			}
		}
		r = float64(sum) * 2 / 60
	}
	r = max(r, base)
	if lim.Cap > 0 {
		r = min(r, lim.Cap)
	}
	return r
}

// succeeded counts a successful request at now towards the dynamic limit.
func (l *keyLimits) succeeded(now int64) {
	idx := now / int64(time.Minute)
	i := idx % 60
	if l.minutes[i] != idx {
		l.minutes[i], l.successes[i] = idx, 0
	}
	l.successes[i]++
	if !l.used {
		l.firstSuccess, l.used = now, true
	}
	l.total++
}

// admit decides whether a request of tokens (and, under an output limit,
// of output tokens) may pass under lim at now, and spends its share when
// it may. It returns the error type of a refusal ("" when admitted), the
// wait until such a request would be admitted, and the windows for the
// rate headers.
func (l *keyLimits) admit(lim *Limit, now int64, tokens, output float64) (refusal string, wait time.Duration, req, tok, out rateWindow) {
	rpm := l.rpm(lim, now)
	rs := meterSpec{alg: lim.resolved(), perMinute: rpm, window: lim.window(), burst: lim.Burst, fromFirst: lim.FromFirstRequest}
	ts := meterSpec{alg: rs.alg, perMinute: lim.TPM, window: rs.window, burst: lim.TokenBurst, fromFirst: rs.fromFirst}
	os := meterSpec{alg: rs.alg, perMinute: lim.OutputTPM, window: rs.window, burst: lim.OutputTokenBurst, fromFirst: rs.fromFirst}
	if lim.OutputTPM <= 0 {
		tokens += output
	}
	var reqWait, tokWait, outWait time.Duration
	if rpm > 0 {
		reqWait = l.req.refresh(now, &rs, 1)
	}
	if lim.TPM > 0 {
		tokWait = l.tok.refresh(now, &ts, tokens)
	}
	if lim.OutputTPM > 0 {
		outWait = l.out.refresh(now, &os, output)
	}
	switch {
	case reqWait > 0:
		refusal = ErrorRequestLimited
	case tokWait > 0 || outWait > 0:
		refusal = ErrorTokenLimited
	default:
		if rpm > 0 {
			l.req.take(now, &rs, 1)
		}
		if lim.TPM > 0 {
			l.tok.take(now, &ts, tokens)
		}
		if lim.OutputTPM > 0 {
			l.out.take(now, &os, output)
		}
	}
	if rpm > 0 {
		req = l.req.view(now, &rs, reqWait)
	}
	if lim.TPM > 0 {
		tok = l.tok.view(now, &ts, tokWait)
	}
	if lim.OutputTPM > 0 {
		out = l.out.view(now, &os, outWait)
	}
	return refusal, max(reqWait, tokWait, outWait), req, tok, out
}
