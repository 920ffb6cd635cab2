package transport

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxSignalDelay bounds every delay [ParseSignals] reports. A server that
// asks for more (a Retry-After of 1e12 seconds, a reset in the year 3000) is
// reported as asking for MaxSignalDelay; callers apply their own, smaller,
// caps on top.
const MaxSignalDelay = 24 * time.Hour

// Verdict is a server's explicit say on retrying, from x-should-retry.
type Verdict int8

const (
	// VerdictNone: the server did not say (no header, or a value other
	// than true or false).
	VerdictNone Verdict = iota
	// VerdictRetry: x-should-retry: true. The request may be retried
	// whatever its status.
	VerdictRetry
	// VerdictDontRetry: x-should-retry: false. The request must not be
	// retried.
	VerdictDontRetry
)

// RetryVerdict reads the server's x-should-retry header of h, as
// [ParseSignals] does, without parsing anything else: what a retry
// decision needs on every answer.
func RetryVerdict(h http.Header) Verdict {
	if v := h["X-Should-Retry"]; len(v) > 0 {
		return parseVerdict(strings.TrimSpace(v[0]))
	}
	return VerdictNone
}

func parseVerdict(val string) Verdict {
	switch {
	case strings.EqualFold(val, "true"):
		return VerdictRetry
	case strings.EqualFold(val, "false"):
		return VerdictDontRetry
	}
	return VerdictNone
}

// Window is one rate-limit window as the server reports it: how many units
// (requests or tokens) it allows, how many remain, and how long until the
// window resets. A field the server did not send is -1.
type Window struct {
	Limit     float64       // units allowed in the window; -1 if not sent
	Remaining float64       // units left before Reset; -1 if not sent
	Reset     time.Duration // time until the window refills; -1 if not sent
}

// Known reports whether the server sent any field of the window.
func (w Window) Known() bool { return w.Limit >= 0 || w.Remaining >= 0 || w.Reset >= 0 }

// Signals is everything a response says about the provider's limits. Make
// one with [ParseSignals]; the zero value is not meaningful (it reports a
// known window of 0).
type Signals struct {
	// RetryAfter is how long the server asked the client to wait before the
	// next attempt: retry-after-ms when present and valid, else Retry-After
	// (delta seconds, fractional seconds, or an HTTP date; a date in the past
	// is 0). -1 when the server asked nothing.
	RetryAfter time.Duration

	// ShouldRetry is the server's x-should-retry verdict.
	ShouldRetry Verdict

	// Requests is the request window: x-ratelimit-{limit,remaining,reset}
	// (Together; numbers, reset in seconds), x-ratelimit-*-requests (OpenAI;
	// reset as a Go duration such as 6m0s or 12ms) and
	// anthropic-ratelimit-requests-* (reset as an RFC 3339 time). Together's
	// *-dynamic variants are folded in, keeping the tighter value.
	Requests Window

	// Tokens is the token window: x-tokenlimit-* (Together),
	// x-ratelimit-*-tokens (OpenAI) and anthropic-ratelimit-{tokens,
	// input-tokens,output-tokens}-* (Anthropic), the tightest of them.
	Tokens Window
}

// ServerWait is the wait the server directed for a response of the given
// status: RetryAfter when the server sent one; otherwise, for a 429, the
// reset of the exhausted window (the later of the two when both are, or
// their reset is all that was sent). It returns -1 when the server directed
// nothing.
func (s *Signals) ServerWait(status int) time.Duration {
	if s.RetryAfter >= 0 {
		return s.RetryAfter
	}
	if status != http.StatusTooManyRequests {
		return -1
	}
	wait := time.Duration(-1)
	for _, w := range [2]*Window{&s.Requests, &s.Tokens} {
		if w.Reset >= 0 && w.Remaining < 1 && w.Reset > wait {
			wait = w.Reset
		}
	}
	return wait
}

// ParseSignals reads every rate signal of h in one pass over its keys. now
// is the time the response arrived; it turns absolute times (HTTP dates,
// RFC 3339 resets, Unix times) into delays. Values that are malformed,
// negative or unknown are ignored; none can make ParseSignals panic or report
// a delay over [MaxSignalDelay].
//
// Keys must be in canonical form, as net/http delivers them and as
// [http.Header.Set] writes them.
func ParseSignals(h http.Header, now time.Time) Signals {
	s := Signals{
		RetryAfter: -1,
		Requests:   Window{-1, -1, -1},
		Tokens:     Window{-1, -1, -1},
	}
	msHeaderWait := time.Duration(-1)
	for k, v := range h {
		if len(v) == 0 || len(k) < 11 {
			continue
		}
		val := strings.TrimSpace(v[0])
		switch k[0] {
		case 'R':
			switch k {
			case "Retry-After":
				s.RetryAfter = parseRetryAfter(val, now)
			case "Retry-After-Ms":
				if f, ok := parseNumber(val); ok {
					msHeaderWait = clampDelay(f * float64(time.Millisecond))
				}
			}
		case 'X':
			switch {
			case k == "X-Should-Retry":
				s.ShouldRetry = parseVerdict(val)
			case strings.HasPrefix(k, "X-Ratelimit-"):
				field, rest := cutField(k[len("X-Ratelimit-"):])
				switch rest {
				case "", "-Dynamic":
					s.Requests.merge(field, val, now)
				case "-Requests":
					s.Requests.merge(field, val, now)
				case "-Tokens":
					s.Tokens.merge(field, val, now)
				}
			case strings.HasPrefix(k, "X-Tokenlimit-"):
				field, rest := cutField(k[len("X-Tokenlimit-"):])
				if rest == "" || rest == "-Dynamic" {
					s.Tokens.merge(field, val, now)
				}
			}
		case 'A':
			if !strings.HasPrefix(k, "Anthropic-Ratelimit-") {
				continue
			}
			k = k[len("Anthropic-Ratelimit-"):]
			var w *Window
			switch {
			case strings.HasPrefix(k, "Requests-"):
				w, k = &s.Requests, k[len("Requests-"):]
			case strings.HasPrefix(k, "Tokens-"):
				w, k = &s.Tokens, k[len("Tokens-"):]
			case strings.HasPrefix(k, "Input-Tokens-"):
				w, k = &s.Tokens, k[len("Input-Tokens-"):]
			case strings.HasPrefix(k, "Output-Tokens-"):
				w, k = &s.Tokens, k[len("Output-Tokens-"):]
			default:
				continue
			}
			if field, rest := cutField(k); rest == "" {
				w.merge(field, val, now)
			}
		}
	}
	if msHeaderWait >= 0 {
		s.RetryAfter = msHeaderWait
	}
	return s
}

type field int8

const (
	noField field = iota
	limitField
	remainingField
	resetField
)

// cutField splits "Limit-Requests" into (limitField, "-Requests").
func cutField(k string) (field, string) {
	switch {
	case strings.HasPrefix(k, "Limit"):
		return limitField, k[len("Limit"):]
	case strings.HasPrefix(k, "Remaining"):
		return remainingField, k[len("Remaining"):]
	case strings.HasPrefix(k, "Reset"):
		return resetField, k[len("Reset"):]
	}
	return noField, k
}

// merge folds one header into w, keeping the tighter value when several
// headers describe the same window: the smaller limit and remainder, the
// later reset.
func (w *Window) merge(f field, val string, now time.Time) {
	switch f {
	case limitField, remainingField:
		n, ok := parseNumber(val)
		if !ok || n < 0 {
			return
		}
		p := &w.Limit
		if f == remainingField {
			p = &w.Remaining
		}
		if *p < 0 || n < *p {
			*p = n
		}
	case resetField:
		if d := ParseReset(val, now); d >= 0 && d > w.Reset {
			w.Reset = d
		}
	}
}

// parseRetryAfter reads a Retry-After value: delta seconds (fractions
// allowed) or an HTTP date in any of the three forms of RFC 9110.
func parseRetryAfter(val string, now time.Time) time.Duration {
	if f, ok := parseNumber(val); ok {
		if f < 0 {
			return -1
		}
		return clampDelay(f * float64(time.Second))
	}
	if t, err := http.ParseTime(val); err == nil {
		return untilTime(t, now)
	}
	return -1
}

// ParseReset reads a rate-limit reset in any of the forms providers send:
// seconds as a number ("1", "0.5"; Together), a Go duration ("6m0s",
// "12ms"; OpenAI), an RFC 3339 time (Anthropic), an HTTP date, or a Unix
// time in seconds (a number past 1e9). It returns the delay from now, 0 for
// a time in the past, at most [MaxSignalDelay], or -1 when val is none of
// these or is negative.
func ParseReset(val string, now time.Time) time.Duration {
	if val == "" {
		return -1
	}
	if f, ok := parseNumber(val); ok {
		switch {
		case f < 0:
			return -1
		case f >= 1e9 && f < 1e11: // a Unix time, not a delay of 31 years
			sec, frac := math.Modf(f)
			return untilTime(time.Unix(int64(sec), int64(frac*1e9)), now)
		}
		return clampDelay(f * float64(time.Second))
	}
	if c := val[len(val)-1]; c == 's' || c == 'm' || c == 'h' {
		if d, err := time.ParseDuration(val); err == nil {
			if d < 0 {
				return -1
			}
			return min(d, MaxSignalDelay)
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, val); err == nil {
		return untilTime(t, now)
	}
	if t, err := http.ParseTime(val); err == nil {
		return untilTime(t, now)
	}
	return -1
}

// parseNumber parses a finite decimal number, rejecting the NaN, Inf and
// hexadecimal forms strconv also accepts.
func parseNumber(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && c != '.' && c != '-' && c != '+' && c != 'e' && c != 'E' {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func clampDelay(ns float64) time.Duration {
	if ns >= float64(MaxSignalDelay) {
		return MaxSignalDelay
	}
	return time.Duration(ns)
}

func untilTime(t, now time.Time) time.Duration {
	d := t.Sub(now)
	if d < 0 {
		return 0
	}
	return min(d, MaxSignalDelay)
}
