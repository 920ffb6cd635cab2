package conformance

import (
	"math"
	"net/http"
	"strconv"
	"time"
)

// Limit is the rate limit of one endpoint, applied to each API key on its
// own. The zero Limit limits nothing.
type Limit struct {
	// RPM is the number of requests allowed per minute; 0 means no request
	// limit (unless Dynamic).
	RPM float64
	// Window is how RPM is enforced. 0 or time.Second: per second, as
	// Together does, by a token bucket that refills at RPM/60 requests per
	// second, holds RPM/60 (at least 1) and starts full; 60 RPM is one
	// request per second and a burst of 60 is refused. time.Minute: fixed
	// one-minute windows (aligned on the clock's minutes) of RPM requests.
	// Any other value means time.Second.
	Window time.Duration
	// TPM is the number of tokens allowed per minute, enforced the same
	// way as RPM; 0 means no token limit. A request's tokens are its
	// text's characters divided by 4, rounded up (chat: every message's
	// content; completions and images: the prompt; embeddings: every
	// input), plus its max_tokens. A request larger than the bucket needs
	// the bucket full, or a fresh window.
	TPM float64
	// Dynamic makes the request limit Together's dynamic one: the
	// effective RPM is twice the key's successful requests per minute over
	// the past hour (the current minute included), never below Base nor
	// above Cap. RPM is then only the default Base.
	Dynamic bool
	// Base and Cap bound the dynamic RPM. Base 0 means RPM, or 60 when RPM
	// is 0 too (a new account's limit); Cap 0 means no upper bound.
	Base, Cap float64
}

// Headers selects the rate headers the server sends, as bit flags. Every
// 429 carries x-ratelimit-reset whatever the flags; the zero value sends
// nothing else, as Together documents today.
type Headers uint8

const (
	// HeaderEveryAnswer sends x-ratelimit-limit, x-ratelimit-remaining and
	// x-ratelimit-reset (and, with a token limit, x-tokenlimit-limit and
	// x-tokenlimit-remaining) on every answer of a limited endpoint, as
	// older Together docs describe: the values of the enforcing window (per
	// second: the bucket's capacity and whole requests left; per minute:
	// RPM and what is left of it), resets in decimal seconds.
	HeaderEveryAnswer Headers = 1 << iota
	// HeaderRetryAfter adds Retry-After to 429s: the reset in whole
	// seconds, rounded up.
	HeaderRetryAfter
	// HeaderOpenAI sends x-ratelimit-{limit,remaining,reset}-{requests,
	// tokens} on every answer of a limited endpoint, resets as Go durations
	// ("1s", "6m0s", "12ms").
	HeaderOpenAI
	// HeaderAnthropic sends anthropic-ratelimit-{requests,tokens}-{limit,
	// remaining,reset} on every answer of a limited endpoint, resets as RFC
	// 3339 times with milliseconds.
	HeaderAnthropic
)

// Types of a 429's error body: which limit refused the request.
const (
	ErrorRequestLimited = "dynamic_request_limited"
	ErrorTokenLimited   = "dynamic_token_limited"
)

// keyLimits is the state of one key's limits on one endpoint.
type keyLimits struct {
	req, tok limitMeter
	// successes[i] counts the successful requests of minute minutes[i]
	// (Unix minutes), a ring over the past hour: a few hundred bytes
	// however long the run, where a list of arrivals would grow forever.
	successes [60]int32
	minutes   [60]int64
}

// limitMeter is one limit (requests or tokens) in one of its two forms.
type limitMeter struct {
	// level is, for a bucket, the units available; for a window, the
	// units used in the current one.
	level float64
	// at is, for a bucket, the Unix nanosecond of the last refill; for a
	// window, the Unix minute of the current one.
	at    int64
	ready bool
}

// rateWindow is what a meter reports: the server's view of one limit after a
// request, as the rate headers tell it. reset is, on a 429, the exact wait
// the request needs; otherwise the time until the limit is whole again.
type rateWindow struct {
	set              bool
	limit, remaining float64
	reset            time.Duration
}

const bucketEpsilon = 1e-9 // float slack, so a wait of exactly reset is enough

// refresh brings m to now under a limit of perMinute and returns the wait
// until need more units fit (0 when they fit now).
func (m *limitMeter) refresh(now int64, perMinute, need float64, minute bool) time.Duration {
	if minute {
		idx := now / int64(time.Minute)
		if !m.ready || idx != m.at {
			m.level, m.at, m.ready = 0, idx, true
		}
		if m.level == 0 || m.level+need <= perMinute+bucketEpsilon {
			return 0
		}
		return time.Duration((idx+1)*int64(time.Minute) - now)
	}
	rate, capacity := perMinute/60, max(perMinute/60, 1)
	if !m.ready {
		m.level, m.at, m.ready = capacity, now, true
	}
	if now > m.at {
		m.level += rate * float64(now-m.at) / 1e9
		m.at = now
	}
	m.level = min(m.level, capacity)
	need = min(need, capacity)
	if m.level+bucketEpsilon >= need {
		return 0
	}
	return time.Duration(math.Ceil((need - m.level) / rate * 1e9))
}

// take spends need units that refresh admitted.
func (m *limitMeter) take(perMinute, need float64, minute bool) {
	if minute {
		m.level += need
		return
	}
	m.level -= min(need, max(perMinute/60, 1))
	if m.level < 0 { // the float slack of refresh
		m.level = 0
	}
}

// view is the window m stands at; wait, when positive, is the reset.
func (m *limitMeter) view(now int64, perMinute float64, minute bool, wait time.Duration) rateWindow {
	w := rateWindow{set: true, reset: wait}
	if minute {
		w.limit, w.remaining = perMinute, max(math.Floor(perMinute-m.level), 0)
		if wait == 0 {
			w.reset = time.Duration((m.at+1)*int64(time.Minute) - now)
		}
		return w
	}
	rate, capacity := perMinute/60, max(perMinute/60, 1)
	w.limit, w.remaining = capacity, math.Floor(m.level+bucketEpsilon)
	if wait == 0 {
		w.reset = time.Duration(math.Ceil((capacity - m.level) / rate * 1e9))
	}
	return w
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
	idx := now / int64(time.Minute)
	var sum int64
	for i, m := range l.minutes {
		if m > idx-60 && m <= idx {
			sum += int64(l.successes[i])
		}
	}
	r := max(float64(sum)*2/60, base)
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
}

// admit decides whether a request of tokens may pass under lim at now, and
// spends its share when it may. It returns the error type of a refusal (""
// when admitted), the wait until such a request would be admitted, and the
// windows for the rate headers.
func (l *keyLimits) admit(lim *Limit, now int64, tokens float64) (refusal string, wait time.Duration, req, tok rateWindow) {
	minute := lim.Window == time.Minute
	rpm := l.rpm(lim, now)
	var reqWait, tokWait time.Duration
	if rpm > 0 {
		reqWait = l.req.refresh(now, rpm, 1, minute)
	}
	if lim.TPM > 0 {
		tokWait = l.tok.refresh(now, lim.TPM, tokens, minute)
	}
	switch {
	case reqWait > 0:
		refusal = ErrorRequestLimited
	case tokWait > 0:
		refusal = ErrorTokenLimited
	default:
		if rpm > 0 {
			l.req.take(rpm, 1, minute)
		}
		if lim.TPM > 0 {
			l.tok.take(lim.TPM, tokens, minute)
		}
	}
	if rpm > 0 {
		req = l.req.view(now, rpm, minute, reqWait)
	}
	if lim.TPM > 0 {
		tok = l.tok.view(now, lim.TPM, minute, tokWait)
	}
	return refusal, max(reqWait, tokWait), req, tok
}

// rateHeaders writes the rate headers flags asks for into h. wait is the
// reset of a 429 (0 on any other answer); now turns resets into the
// absolute times of Anthropic's form.
func rateHeaders(h http.Header, flags Headers, status int, wait time.Duration, req, tok rateWindow, now time.Time) {
	limited := status == http.StatusTooManyRequests
	if limited {
		h["X-Ratelimit-Reset"] = []string{formatSeconds(wait)}
		if flags&HeaderRetryAfter != 0 {
			h["Retry-After"] = []string{strconv.FormatInt(int64(ceilTo(wait, time.Second)/time.Second), 10)}
		}
	}
	if flags&HeaderEveryAnswer != 0 {
		if req.set {
			h["X-Ratelimit-Limit"] = []string{formatNumber(req.limit)}
			h["X-Ratelimit-Remaining"] = []string{formatNumber(req.remaining)}
			if !limited {
				h["X-Ratelimit-Reset"] = []string{formatSeconds(req.reset)}
			}
		}
		if tok.set {
			h["X-Tokenlimit-Limit"] = []string{formatNumber(tok.limit)}
			h["X-Tokenlimit-Remaining"] = []string{formatNumber(tok.remaining)}
		}
	}
	if flags&HeaderOpenAI != 0 {
		if req.set {
			h["X-Ratelimit-Limit-Requests"] = []string{formatNumber(req.limit)}
			h["X-Ratelimit-Remaining-Requests"] = []string{formatNumber(req.remaining)}
			h["X-Ratelimit-Reset-Requests"] = []string{ceilTo(req.reset, time.Millisecond).String()}
		}
		if tok.set {
			h["X-Ratelimit-Limit-Tokens"] = []string{formatNumber(tok.limit)}
			h["X-Ratelimit-Remaining-Tokens"] = []string{formatNumber(tok.remaining)}
			h["X-Ratelimit-Reset-Tokens"] = []string{ceilTo(tok.reset, time.Millisecond).String()}
		}
	}
	if flags&HeaderAnthropic != 0 {
		const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"
		if req.set {
			h["Anthropic-Ratelimit-Requests-Limit"] = []string{formatNumber(req.limit)}
			h["Anthropic-Ratelimit-Requests-Remaining"] = []string{formatNumber(req.remaining)}
			h["Anthropic-Ratelimit-Requests-Reset"] = []string{now.Add(ceilTo(req.reset, time.Millisecond)).UTC().Format(rfc3339Milli)}
		}
		if tok.set {
			h["Anthropic-Ratelimit-Tokens-Limit"] = []string{formatNumber(tok.limit)}
			h["Anthropic-Ratelimit-Tokens-Remaining"] = []string{formatNumber(tok.remaining)}
			h["Anthropic-Ratelimit-Tokens-Reset"] = []string{now.Add(ceilTo(tok.reset, time.Millisecond)).UTC().Format(rfc3339Milli)}
		}
	}
}

// formatSeconds formats d as decimal seconds, rounded up to the millisecond so
// that waiting exactly that long is always enough: "1", "0.25", "59.001".
func formatSeconds(d time.Duration) string {
	return strconv.FormatFloat(float64(ceilTo(d, time.Millisecond)/time.Millisecond)/1000, 'f', -1, 64)
}

func ceilTo(d, unit time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return (d + unit - 1) / unit * unit
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
