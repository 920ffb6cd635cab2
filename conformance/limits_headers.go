package conformance

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"net/http"
	"strconv"
	"time"
)

// Headers selects the rate headers the server sends, as bit flags: the
// dialects of the providers and rate limiters a client meets. Every 429
// carries x-ratelimit-reset unless [HeaderNoReset] (or [HeaderLegacy],
// which owns that name) is set; the zero value sends nothing else, as
// Together documents today. Some common dialects:
//
//	0                                  Together: x-ratelimit-reset on 429s
//	HeaderNoReset                      none at all (nginx's limit_req)
//	HeaderNoReset|HeaderRetryAfter     Retry-After on 429s only
//	HeaderEveryAnswer                  Together's older docs
//	HeaderOpenAI, HeaderAnthropic      those providers' own
//	HeaderLegacy|HeaderRetryAfter      express-rate-limit, legacyHeaders: true
//	HeaderDraft7|HeaderRetryAfter|HeaderNoReset
//	                                   express-rate-limit, standardHeaders: 'draft-7'
//
// The values are those of the enforcing algorithm: a bucket's capacity,
// what is left of it and the time until it is full; a window's quota,
// what is left of it and the time until it ends (a sliding log: until
// every request in it is forgotten). On a 429 the reset is always the
// wait until that request would pass.
type Headers uint16

const (
	// HeaderEveryAnswer sends x-ratelimit-limit, x-ratelimit-remaining and
	// x-ratelimit-reset (and, with a token limit, x-tokenlimit-limit and
	// x-tokenlimit-remaining) on every answer of a limited endpoint, as
	// older Together docs describe: the values of the enforcing algorithm,
	// resets in decimal seconds.
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
	// HeaderNoReset leaves out the x-ratelimit-reset that every 429
	// otherwise carries: alone, the server says nothing of its limits.
	HeaderNoReset
	// HeaderLegacy sends X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset on every answer of a limited endpoint as
	// express-rate-limit does with legacyHeaders: true (source/headers.ts,
	// setLegacyHeaders): the reset is a Unix time in whole seconds,
	// rounded up, and a Date header gives the server's clock. The names
	// are Together's too: its values replace those of HeaderEveryAnswer
	// and the 429's x-ratelimit-reset.
	HeaderLegacy
	// HeaderDraft6 sends the IETF RateLimit headers of
	// draft-ietf-httpapi-ratelimit-headers-06 as express-rate-limit writes
	// them for standardHeaders: 'draft-6' (source/headers.ts,
	// setDraft6Headers): RateLimit-Policy "100;w=60", RateLimit-Limit,
	// RateLimit-Remaining and, when it is not 0, RateLimit-Reset, in whole
	// seconds rounded up.
	HeaderDraft6
	// HeaderDraft7 sends the draft-07 form (setDraft7Headers):
	// RateLimit-Policy "100;w=60" and RateLimit "limit=100, remaining=25,
	// reset=5".
	HeaderDraft7
	// HeaderDraft8 sends the draft-08 form (setDraft8Headers), structured
	// fields with a named policy: RateLimit-Policy `"100-in-1min"; q=100;
	// w=60; pk=:<partition key>:` and RateLimit `"100-in-1min"; r=25;
	// t=5`. The name is express-rate-limit's default identifier, the
	// partition key its hash of the client's key (here the API key). A
	// token limit adds a second policy, "<quota>-tokens-in-<window>", as
	// a second limiter would.
	HeaderDraft8
)

// rateHeaders writes the rate headers flags asks for into h. wait is the
// reset of a 429 (0 on any other answer); now turns resets into the
// absolute times of Anthropic's and the legacy form; key is the client's,
// for draft-8's partition key.
func rateHeaders(h http.Header, flags Headers, status int, wait time.Duration, req, tok rateWindow, now time.Time, key string) {
	limited := status == http.StatusTooManyRequests
	if limited {
		if flags&HeaderNoReset == 0 {
			h["X-Ratelimit-Reset"] = []string{formatSeconds(wait)}
		}
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
	// The express-rate-limit forms describe one limit each; with both, the
	// request limit (draft-8 lists both), or on a 429 the limit that
	// refused it (of two, the longer wait): its reset is the wait. A limit
	// that did not refuse may take longer to fill, but says nothing of
	// when the request passes.
	one := req
	if !one.set || limited && tok.refused && (!req.refused || tok.reset > req.reset) {
		one = tok
	}
	if !one.set {
		return
	}
	if limited {
		one.reset = max(one.reset, wait)
	}
	if flags&HeaderLegacy != 0 {
		h["X-Ratelimit-Limit"] = []string{formatNumber(one.quota)}
		h["X-Ratelimit-Remaining"] = []string{formatNumber(one.remaining)}
		h["Date"] = []string{now.UTC().Format(http.TimeFormat)}
		resetAt := now.Add(one.reset)
		h["X-Ratelimit-Reset"] = []string{strconv.FormatInt(ceilDiv(resetAt.UnixNano(), int64(time.Second)), 10)}
	}
	if flags&HeaderDraft6 != 0 {
		h["Ratelimit-Policy"] = []string{formatNumber(one.quota) + ";w=" + wholeSeconds(one.span)}
		h["Ratelimit-Limit"] = []string{formatNumber(one.quota)}
		h["Ratelimit-Remaining"] = []string{formatNumber(one.remaining)}
		if one.reset > 0 {
			h["Ratelimit-Reset"] = []string{wholeSeconds(one.reset)}
		}
	}
	if flags&HeaderDraft7 != 0 {
		h["Ratelimit-Policy"] = []string{formatNumber(one.quota) + ";w=" + wholeSeconds(one.span)}
		h["Ratelimit"] = []string{"limit=" + formatNumber(one.quota) + ", remaining=" + formatNumber(one.remaining) +
			", reset=" + wholeSeconds(one.reset)}
	}
	if flags&HeaderDraft8 != 0 {
		pk := partitionKey(key)
		var policies, states []string
		for _, w := range [...]struct {
			rw   rateWindow
			unit string
		}{{req, ""}, {tok, "tokens-"}} {
			if !w.rw.set {
				continue
			}
			name := `"` + formatNumber(w.rw.quota) + "-" + w.unit + "in-" + windowName(w.rw.span) + `"`
			policies = append(policies, name+"; q="+formatNumber(w.rw.quota)+"; w="+wholeSeconds(w.rw.span)+"; pk=:"+pk+":")
			states = append(states, name+"; r="+formatNumber(w.rw.remaining)+"; t="+wholeSeconds(w.rw.reset))
		}
		h["Ratelimit-Policy"], h["Ratelimit"] = policies, states
	}
}

// wholeSeconds formats d in whole seconds, rounded up, as express-rate-limit
// does (Math.ceil of milliseconds / 1000).
func wholeSeconds(d time.Duration) string {
	return strconv.FormatInt(int64(ceilTo(d, time.Second)/time.Second), 10)
}

// windowName is express-rate-limit's name of a window in its default
// draft-8 identifier: "10sec", "1min", "2hrs", "1day".
func windowName(d time.Duration) string {
	seconds := float64(d.Milliseconds()) / 1000
	minutes, hours, days := seconds/60, seconds/3600, seconds/86400
	plural := func(n float64) string {
		if n > 1 {
			return "s"
		}
		return ""
	}
	switch {
	case seconds < 60:
		return formatNumber(seconds) + "sec"
	case minutes < 60:
		return formatNumber(minutes) + "min"
	case hours < 24:
		return formatNumber(hours) + "hr" + plural(hours)
	}
	return formatNumber(days) + "day" + plural(days)
}

// partitionKey is express-rate-limit's draft-8 partition key of a client
// key: the first 12 hexadecimal digits of its SHA-256, in base64.
func partitionKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])[:12]))
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

// formatNumber formats a count as JavaScript and JSON write numbers:
// "100", "1.5".
func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}
