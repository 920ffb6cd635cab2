package transport

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
	// VerdictRetry: x-should-retry: true. A failed answer (400 or above)
	// may be retried whatever its status; a success is the work done, and
	// is not retried for it.
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
		return parseVerdict(trimValue(v[0]))
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
// (requests or tokens) it allows, how many remain, how long until the
// window resets, and how long the window is. A field the server did not
// send is -1.
type Window struct {
	Limit     float64       // units allowed in the window; -1 if not sent
	Remaining float64       // units left before Reset; -1 if not sent
	Reset     time.Duration // time until the window refills; -1 if not sent

	// Period is the length of the window Limit is counted over: a server
	// whose policy is 100 requests in a 10 s window allows 100 again every
	// 10 s, so Limit / Period is the rate it sustains, and the Limit units
	// it allows after Reset last until Reset + Period. Only the IETF
	// RateLimit fields and Envoy's "10, 10;w=1" limits state it; it belongs
	// to Limit (the two come from the same policy). -1 if not sent, or if
	// the window is 0 (a limit that is no rate, such as concurrency) or
	// longer than a year.
	Period time.Duration
}

// Known reports whether the server sent any field of the window. (A Period
// comes only with its Limit.)
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
	// reset as a Go duration such as 6m0s or 12ms),
	// anthropic-ratelimit-requests-* (reset as an RFC 3339 time), and the
	// IETF RateLimit fields of every draft (RateLimit-Limit, -Remaining,
	// -Reset; RateLimit: limit=, remaining=, reset=; RateLimit-Policy and
	// RateLimit with named policies) whose unit is requests. Of several IETF
	// policies, the one with the fewest units remaining binds, with its own
	// limit, reset and period. Headers of different dialects, and Together's
	// *-dynamic variants, are folded in keeping the tighter value of each
	// field: the smaller limit (with its period) and remainder, the later
	// reset.
	Requests Window

	// Tokens is the token window: x-tokenlimit-* (Together),
	// x-ratelimit-*-tokens (OpenAI), anthropic-ratelimit-{tokens,
	// input-tokens,output-tokens}-* (Anthropic) and IETF policies whose unit
	// is tokens (qu="tokens"), the tightest of them.
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
// [http.Header.Set] writes them (the IETF "RateLimit" field is
// "Ratelimit"). Every field line of the IETF RateLimit and
// RateLimit-Policy fields is read; of the other headers, the first line.
func ParseSignals(h http.Header, now time.Time) Signals {
	return parseSignals(h, now, nil)
}

// parseSignals is ParseSignals, which, when split is not nil, also leaves
// in it Anthropic's input and output token windows apart ([splitKeys]),
// as [ParseWindow] reads each, before folding them into the tokens'.
func parseSignals(h http.Header, now time.Time, split *[2]Window) Signals {
	s := Signals{
		RetryAfter: -1,
		Requests:   Window{-1, -1, -1, -1},
		Tokens:     Window{-1, -1, -1, -1},
	}
	msHeaderWait := time.Duration(-1)
	if split != nil {
		split[0], split[1] = s.Tokens, s.Tokens // none read yet
	}
	// The IETF fields refer to one another: they are gathered here and read
	// once all are known.
	var ietf ietfFields
	for k, v := range h {
		if len(v) == 0 || len(k) < len("Ratelimit") {
			continue
		}
		// Only the names that may be a signal's have their value read: most
		// of an answer's headers are neither.
		c := k[0]
		if c != 'R' && c != 'X' && c != 'A' {
			continue
		}
		switch c {
		case 'R':
			switch k {
			case "Retry-After":
				s.RetryAfter = parseRetryAfter(trimValue(v[0]), now)
			case "Retry-After-Ms":
				if f, ok := parseDelayNumber(trimValue(v[0])); ok {
					msHeaderWait = clampDelay(f * float64(time.Millisecond))
				}
			case "Ratelimit":
				ietf.state = v
			case "Ratelimit-Policy":
				ietf.policy = v
			case "Ratelimit-Limit":
				ietf.limit = trimValue(v[0])
			case "Ratelimit-Remaining":
				ietf.remaining = trimValue(v[0])
			case "Ratelimit-Reset":
				ietf.reset = trimValue(v[0])
			}
		case 'X':
			switch {
			case k == "X-Should-Retry":
				s.ShouldRetry = parseVerdict(trimValue(v[0]))
			case strings.HasPrefix(k, "X-Ratelimit-"):
				field, rest := cutField(k[len("X-Ratelimit-"):])
				switch rest {
				case "", "-Dynamic", "-Requests":
					s.Requests.merge(field, v[0], now)
				case "-Tokens":
					s.Tokens.merge(field, v[0], now)
				}
			case strings.HasPrefix(k, "X-Tokenlimit-"):
				field, rest := cutField(k[len("X-Tokenlimit-"):])
				if rest == "" || rest == "-Dynamic" {
					s.Tokens.merge(field, v[0], now)
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
				if split != nil {
					w = &split[0]
				}
			case strings.HasPrefix(k, "Output-Tokens-"):
				w, k = &s.Tokens, k[len("Output-Tokens-"):]
				if split != nil {
					w = &split[1]
				}
			default:
				continue
			}
			if field, rest := cutField(k); rest == "" {
				w.merge(field, v[0], now)
			}
		}
	}
	if split != nil {
		// Each field folds into the tokens' window as its merge would have.
		s.Tokens.fold(split[0])
		s.Tokens.fold(split[1])
	}
	if ietf.present() {
		ietf.read(&s, now)
	}
	if msHeaderWait >= 0 {
		s.RetryAfter = msHeaderWait
	}
	return s
}

// trimValue is strings.TrimSpace(s), with no call for a value that starts
// and ends with a printable ASCII byte, as nearly every header value does:
// TrimSpace leaves those as they are.
func trimValue(s string) string {
	if len(s) > 0 && s[0] > ' ' && s[0] < utf8.RuneSelf && s[len(s)-1] > ' ' && s[len(s)-1] < utf8.RuneSelf {
		return s
	}
	return strings.TrimSpace(s)
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

// merge folds one header's value (untrimmed, as it came) into w, keeping
// the tighter value when several headers describe the same window, as fold
// does. The value is trimmed only for a field it is read for.
func (w *Window) merge(f field, val string, now time.Time) {
	if f == noField {
		return
	}
	val = trimValue(val)
	switch f {
	case limitField:
		if n, period := parseLimitField(val); n >= 0 {
			w.foldLimit(n, period)
		}
	case remainingField:
		if n, ok := parseNumber(val); ok && n >= 0 && (w.Remaining < 0 || n < w.Remaining) {
			w.Remaining = n
		}
	case resetField:
		if d := ParseReset(val, now); d > w.Reset {
			w.Reset = d
		}
	}
}

// ParseWindow reads one window from the values of its three headers
// (nil for a header not sent): the limit, what remains of it, and its
// reset, each read as [ParseSignals] reads Anthropic's (a reset as an RFC
// 3339 time, a number of seconds or a Unix time, or a Go duration). It is
// for a limit a server states apart from the windows ParseSignals folds
// together, such as Anthropic's input and output tokens
// (anthropic-ratelimit-input-tokens-*), read without a header map of its
// own.
func ParseWindow(limit, remaining, reset []string, now time.Time) Window {
	w := Window{-1, -1, -1, -1}
	if len(limit) > 0 {
		w.merge(limitField, limit[0], now)
	}
	if len(remaining) > 0 {
		w.merge(remainingField, remaining[0], now)
	}
	if len(reset) > 0 {
		w.merge(resetField, reset[0], now)
	}
	return w
}

// fold merges o, another report of the same window, into w, keeping the
// tighter value of each field: the smaller limit and remainder, the later
// reset. A period goes with its limit.
func (w *Window) fold(o Window) {
	if o.Limit >= 0 {
		w.foldLimit(o.Limit, o.Period)
	}
	if o.Remaining >= 0 && (w.Remaining < 0 || o.Remaining < w.Remaining) {
		w.Remaining = o.Remaining
	}
	if o.Reset > w.Reset {
		w.Reset = o.Reset
	}
}

// foldLimit keeps the smaller limit with its period; of equal limits, the
// longer period, which is the lower rate.
func (w *Window) foldLimit(limit float64, period time.Duration) {
	switch {
	case w.Limit < 0 || limit < w.Limit:
		w.Limit, w.Period = limit, period
	case limit == w.Limit && period > w.Period:
		w.Period = period
	}
}

// parseRetryAfter reads a Retry-After value: delta seconds (fractions
// allowed) or an HTTP date in any of the three forms of RFC 9110.
func parseRetryAfter(val string, now time.Time) time.Duration {
	if f, ok := parseDelayNumber(val); ok {
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
// a delay in seconds as a number ("1", "0.5"; Together, the IETF drafts),
// a Go duration ("6m0s", "12ms"; OpenAI), an RFC 3339 time (Anthropic), an
// HTTP date, or a Unix time (GitHub, express-rate-limit's X-RateLimit-Reset;
// in milliseconds, JavaScript's Date.now, some others). It returns the delay
// from now, 0 for a time in the past, at most [MaxSignalDelay], or -1 when
// val is none of these or is negative.
//
// A number of 1e9 or more is a Unix time: as a delay it would be 31 years
// or more, which no server means; so is a smaller number within
// MaxSignalDelay of now's Unix time in seconds (a clock set before 2001,
// as a test's virtual clock is). Its size tells its unit: seconds below
// 1e11, milliseconds below 1e14, microseconds below 1e17, nanoseconds below
// 1e20. Each range holds every date from 2001 (1973 for the finer units) to
// the year 5138, so no date of this age in one unit falls in the range of
// another: 1.7e12 is a time in milliseconds, not 1.7e12 seconds. As for
// every absolute time, one in the past is 0 (however far back: the window
// has reset) and one further ahead than MaxSignalDelay is MaxSignalDelay
// (however far ahead: the server asks for a long wait, which callers cap).
// A number of 1e20 or more is no date in any unit but a wait longer than any
// cap: MaxSignalDelay too, as are a number of more than 32 digits and a Go
// duration too long for a time.Duration ("3000000h").
func ParseReset(val string, now time.Time) time.Duration {
	if val == "" {
		return -1
	}
	if f, ok := parseDelayNumber(val); ok {
		if f < 0 {
			return -1
		}
		return resetFromNumber(f, now)
	}
	if c := val[len(val)-1]; c == 's' || c == 'm' || c == 'h' {
		d, ok := parseWholeDuration(val)
		if !ok {
			var err error
			d, err = time.ParseDuration(val)
			ok = err == nil
		}
		if ok {
			if d < 0 {
				return -1
			}
			return min(d, MaxSignalDelay)
		}
		if unsignedDuration(val) { // well formed: too long for a Duration
			return MaxSignalDelay
		}
	}
	if t, ok := parseRFC3339Seconds(val); ok {
		return untilTime(t, now)
	}
	if t, err := time.Parse(time.RFC3339Nano, val); err == nil {
		return untilTime(t, now)
	}
	if t, err := http.ParseTime(val); err == nil {
		return untilTime(t, now)
	}
	return -1
}

// resetFromNumber reads a reset f of zero or more, as ParseReset documents:
// a delay in seconds below 1e9, a Unix time in the unit its size tells
// above.
func resetFromNumber(f float64, now time.Time) time.Duration {
	if f < 1e9 {
		if math.Abs(f-float64(now.Unix())) <= MaxSignalDelay.Seconds() {
			// A Unix time of a clock set before 2001, as a test's
			// virtual clock is: within a day of now, no delay of 30 years.
			sec := math.Floor(f)
			return untilTime(time.Unix(int64(sec), int64((f-sec)*1e9)), now)
		}
		return clampDelay(f * float64(time.Second))
	}
	perSecond := 1.0
	for limit := 1e11; f >= limit; limit *= 1e3 {
		if perSecond == 1e9 {
			return MaxSignalDelay // past nanoseconds: no date, a wait without end
		}
		perSecond *= 1e3
	}
	sec := math.Floor(f / perSecond)
	nsec := (f - sec*perSecond) * (1e9 / perSecond)
	return untilTime(time.Unix(int64(sec), int64(nsec)), now)
}

// parseNumber parses a finite decimal number, rejecting the NaN, Inf and
// hexadecimal forms strconv also accepts.
func parseNumber(s string) (float64, bool) {
	if s == "" || len(s) > 32 {
		return 0, false
	}
	// Counts are whole numbers nearly always: up to 15 digits they are
	// exact as a float64, and read here at a tenth of strconv's cost.
	if len(s) <= 15 {
		n, whole := int64(0), true
		for i := 0; i < len(s); i++ {
			c := s[i] - '0'
			if c > 9 {
				whole = false
				break
			}
			n = n*10 + int64(c)
		}
		if whole {
			return float64(n), true
		}
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

// parseDelayNumber is parseNumber for a delay, which also reads a run of
// digits too long for parseNumber (a valid delay-seconds of RFC 9110): its
// leading zeros dropped, it is read, or, still too long, is a number far
// above any delay (1e300), which the callers clamp.
func parseDelayNumber(s string) (float64, bool) {
	if f, ok := parseNumber(s); ok || len(s) <= 32 {
		return f, ok
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	if t := strings.TrimLeft(s, "0"); len(t) <= 32 {
		if t == "" {
			return 0, true
		}
		return parseNumber(t)
	}
	return 1e300, true
}

// unsignedDuration reports whether s has the syntax of a Go duration
// without a sign ("3000000h", "1.5s"): one that time.ParseDuration refuses
// is too long for a Duration.
func unsignedDuration(s string) bool {
	if s == "" {
		return false
	}
	for s != "" {
		i, digits := 0, 0
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			digits++
		}
		if i < len(s) && s[i] == '.' {
			for i++; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
				digits++
			}
		}
		if digits == 0 {
			return false
		}
		s = s[i:]
		i = 0
		for ; i < len(s) && s[i] != '.' && (s[i] < '0' || s[i] > '9'); i++ {
		}
		switch s[:i] {
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		default:
			return false
		}
		s = s[i:]
	}
	return true
}

// parseWholeDuration reads the Go durations OpenAI sends ("6m0s", "12ms",
// "1h2m3s"): whole numbers, each with a unit of h, m, s, ms, us or ns, no
// sign, no fraction. It reports false for anything else, and for a sum
// that would overflow, which time.ParseDuration reads instead: for every
// string it accepts, it returns what ParseDuration does, at a fraction of
// its cost (ParseDuration looks each unit up in a map).
func parseWholeDuration(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	var d int64
	for s != "" {
		i, v := 0, int64(0)
		for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
			if v > (math.MaxInt64-9)/10 {
				return 0, false
			}
			v = v*10 + int64(s[i]-'0')
		}
		if i == 0 {
			return 0, false
		}
		s = s[i:]
		// The unit runs to the next digit or '.', as ParseDuration reads it.
		i = 0
		for ; i < len(s) && s[i] != '.' && (s[i] < '0' || s[i] > '9'); i++ {
		}
		var unit int64
		switch s[:i] {
		case "h":
			unit = int64(time.Hour)
		case "m":
			unit = int64(time.Minute)
		case "s":
			unit = int64(time.Second)
		case "ms":
			unit = int64(time.Millisecond)
		case "us":
			unit = int64(time.Microsecond)
		case "ns":
			unit = int64(time.Nanosecond)
		default:
			return 0, false
		}
		s = s[i:]
		if v > math.MaxInt64/unit || d > math.MaxInt64-v*unit {
			return 0, false
		}
		d += v * unit
	}
	return time.Duration(d), true
}

// parseRFC3339Seconds reads an RFC 3339 time in UTC to the second,
// "2006-01-02T15:04:05Z", as Anthropic sends its resets. It reports false
// for any other form, which time.Parse reads instead: for every string it
// accepts, it returns the instant time.Parse(time.RFC3339Nano) does, with
// none of the work of building its date.
func parseRFC3339Seconds(s string) (time.Time, bool) {
	if len(s) != len("2006-01-02T15:04:05Z") || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
		s[13] != ':' || s[16] != ':' || s[19] != 'Z' {
		return time.Time{}, false
	}
	for _, i := range [...]int{0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18} {
		if s[i]-'0' > 9 {
			return time.Time{}, false
		}
	}
	two := func(i int) int { return int(s[i]-'0')*10 + int(s[i+1]-'0') }
	year, month, day := two(0)*100+two(2), two(5), two(8)
	hour, minute, sec := two(11), two(14), two(17)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Unix(daysFromCivil(year, month, day)*86400+int64(hour*3600+minute*60+sec), 0), true
}

// daysIn is the number of days of month in year, of the proleptic
// Gregorian calendar, as the time package counts them.
func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is the number of days from 1970-01-01 to the date, of the
// proleptic Gregorian calendar (Howard Hinnant's days_from_civil), for a
// year from 0 to 9999: counted from 400 years earlier, so that every
// quotient is of a number not negative.
func daysFromCivil(year, month, day int) int64 {
	y := uint(year + 400)
	if month <= 2 {
		y--
	}
	era, yoe := y/400, y%400
	mp := uint(month+9) % 12
	doy := (153*mp+2)/5 + uint(day) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097+doe) - 719468 - 146097
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
