package transport_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

var now = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

var unknown = transport.Window{Limit: -1, Remaining: -1, Reset: -1, Period: -1}

func TestParseSignalsRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want time.Duration
	}{
		{"none", header(), -1},
		{"delta seconds", header("Retry-After", "3"), 3 * time.Second},
		{"fractional seconds", header("Retry-After", "1.5"), 1500 * time.Millisecond},
		{"zero", header("Retry-After", "0"), 0},
		{"negative ignored", header("Retry-After", "-1"), -1},
		{"garbage ignored", header("Retry-After", "soon"), -1},
		{"NaN ignored", header("Retry-After", "NaN"), -1},
		{"Inf ignored", header("Retry-After", "+Inf"), -1},
		{"hex ignored", header("Retry-After", "0x10"), -1},
		{"huge capped", header("Retry-After", "1e12"), transport.MaxSignalDelay},
		{"IMF-fixdate", header("Retry-After", "Fri, 27 Nov 2026 12:00:05 GMT"), 5 * time.Second},
		{"RFC 850", header("Retry-After", "Friday, 27-Nov-26 12:00:07 GMT"), 7 * time.Second},
		{"ANSI C asctime", header("Retry-After", "Fri Nov 27 12:00:09 2026"), 9 * time.Second},
		{"date in the past is 0", header("Retry-After", "Fri, 27 Nov 2026 11:00:00 GMT"), 0},
		{"date far ahead capped", header("Retry-After", "Fri, 27 Nov 2099 11:00:00 GMT"), transport.MaxSignalDelay},
		{"whitespace", header("Retry-After", " 2 "), 2 * time.Second},
		{"retry-after-ms", header("Retry-After-Ms", "250"), 250 * time.Millisecond},
		{"retry-after-ms fractional", header("Retry-After-Ms", "12.5"), 12500 * time.Microsecond},
		{"retry-after-ms wins", header("Retry-After-Ms", "250", "Retry-After", "3"), 250 * time.Millisecond},
		{"bad retry-after-ms falls back", header("Retry-After-Ms", "x", "Retry-After", "3"), 3 * time.Second},
		{"negative retry-after-ms falls back", header("Retry-After-Ms", "-5", "Retry-After", "3"), 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := transport.ParseSignals(tc.h, now)
			assert.Equal(t, tc.want, s.RetryAfter)
		})
	}
}

func TestParseSignalsShouldRetry(t *testing.T) {
	assert.Equal(t, transport.VerdictRetry, transport.ParseSignals(header("X-Should-Retry", "true"), now).ShouldRetry)
	assert.Equal(t, transport.VerdictRetry, transport.ParseSignals(header("X-Should-Retry", "TRUE"), now).ShouldRetry)
	assert.Equal(t, transport.VerdictDontRetry, transport.ParseSignals(header("X-Should-Retry", "false"), now).ShouldRetry)
	assert.Equal(t, transport.VerdictNone, transport.ParseSignals(header("X-Should-Retry", "maybe"), now).ShouldRetry)
	assert.Equal(t, transport.VerdictNone, transport.ParseSignals(header(), now).ShouldRetry)
}

func TestParseSignalsWindows(t *testing.T) {
	for _, tc := range []struct {
		name             string
		h                http.Header
		requests, tokens transport.Window
	}{
		{"none", header(), unknown, unknown},
		{
			"Together",
			header("X-Ratelimit-Limit", "10", "X-Ratelimit-Remaining", "3", "X-Ratelimit-Reset", "0.5",
				"X-Tokenlimit-Limit", "2000", "X-Tokenlimit-Remaining", "1500"),
			transport.Window{Limit: 10, Remaining: 3, Reset: 500 * time.Millisecond, Period: -1},
			transport.Window{Limit: 2000, Remaining: 1500, Reset: -1, Period: -1},
		},
		{
			"Together dynamic is the tighter",
			header("X-Ratelimit-Limit", "10", "X-Ratelimit-Limit-Dynamic", "4",
				"X-Ratelimit-Remaining", "3", "X-Ratelimit-Remaining-Dynamic", "5"),
			transport.Window{Limit: 4, Remaining: 3, Reset: -1, Period: -1}, unknown,
		},
		{
			"Together 429 reset only",
			header("X-Ratelimit-Reset", "1"),
			transport.Window{Limit: -1, Remaining: -1, Reset: time.Second, Period: -1}, unknown,
		},
		{
			"OpenAI",
			header("X-Ratelimit-Limit-Requests", "500", "X-Ratelimit-Remaining-Requests", "499", "X-Ratelimit-Reset-Requests", "120ms",
				"X-Ratelimit-Limit-Tokens", "30000", "X-Ratelimit-Remaining-Tokens", "29000", "X-Ratelimit-Reset-Tokens", "6m0s"),
			transport.Window{Limit: 500, Remaining: 499, Reset: 120 * time.Millisecond, Period: -1},
			transport.Window{Limit: 30000, Remaining: 29000, Reset: 6 * time.Minute, Period: -1},
		},
		{
			"Anthropic",
			header("Anthropic-Ratelimit-Requests-Limit", "50", "Anthropic-Ratelimit-Requests-Remaining", "0",
				"Anthropic-Ratelimit-Requests-Reset", "2026-11-27T12:00:02Z",
				"Anthropic-Ratelimit-Input-Tokens-Limit", "40000", "Anthropic-Ratelimit-Input-Tokens-Remaining", "100",
				"Anthropic-Ratelimit-Output-Tokens-Limit", "8000", "Anthropic-Ratelimit-Output-Tokens-Remaining", "7000",
				"Anthropic-Ratelimit-Tokens-Reset", "2026-11-27T12:00:30Z"),
			transport.Window{Limit: 50, Remaining: 0, Reset: 2 * time.Second, Period: -1},
			transport.Window{Limit: 8000, Remaining: 100, Reset: 30 * time.Second, Period: -1},
		},
		{
			"malformed values ignored",
			header("X-Ratelimit-Limit", "ten", "X-Ratelimit-Remaining", "-3", "X-Ratelimit-Reset", "tomorrow",
				"X-Ratelimit-Reset-Tokens", "-5s", "Anthropic-Ratelimit-Requests-Reset", "2026-13-45T99:00:00Z"),
			unknown, unknown,
		},
		{
			"Unix time reset",
			header("X-Ratelimit-Reset", "1795780804"), // 2026-11-27T12:00:04Z
			transport.Window{Limit: -1, Remaining: -1, Reset: 4 * time.Second, Period: -1}, unknown,
		},
		{
			"Unix time reset in milliseconds",
			header("X-Ratelimit-Reset", "1795780804250"), // 2026-11-27T12:00:04.25Z
			transport.Window{Limit: -1, Remaining: -1, Reset: 4250 * time.Millisecond, Period: -1}, unknown,
		},
		{
			"huge reset capped",
			header("X-Ratelimit-Reset", "99999999999999"), // the year 5138 in milliseconds
			transport.Window{Limit: -1, Remaining: -1, Reset: transport.MaxSignalDelay, Period: -1}, unknown,
		},
		{
			"reset in the past is 0",
			header("Anthropic-Ratelimit-Requests-Reset", "2026-11-27T11:00:00Z"),
			transport.Window{Limit: -1, Remaining: -1, Reset: 0, Period: -1}, unknown,
		},
		{
			"unrelated headers",
			header("X-Ratelimit-Foo", "1", "X-Tokenlimit-Bar-Requests", "5", "Anthropic-Ratelimit-Other-Limit", "3", "Content-Type", "x"),
			unknown, unknown,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := transport.ParseSignals(tc.h, now)
			assert.Equal(t, tc.requests, s.Requests, "requests")
			assert.Equal(t, tc.tokens, s.Tokens, "tokens")
		})
	}
}

func TestServerWait(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		want   time.Duration
	}{
		{"nothing", 429, header(), -1},
		{"Retry-After on 503", 503, header("Retry-After", "2"), 2 * time.Second},
		{"reset on 429", 429, header("X-Ratelimit-Reset", "0.25"), 250 * time.Millisecond},
		{"reset ignored on 503", 503, header("X-Ratelimit-Reset", "0.25"), -1},
		{"reset of a window with room ignored", 429, header("X-Ratelimit-Remaining", "5", "X-Ratelimit-Reset", "3"), -1},
		{"exhausted token window", 429, header("X-Ratelimit-Remaining-Requests", "5", "X-Ratelimit-Reset-Requests", "1s",
			"X-Ratelimit-Remaining-Tokens", "0", "X-Ratelimit-Reset-Tokens", "7s"), 7 * time.Second},
		{"later of two", 429, header("X-Ratelimit-Reset-Requests", "1s", "X-Ratelimit-Reset-Tokens", "2s"), 2 * time.Second},
		{"Retry-After beats reset", 429, header("Retry-After", "1", "X-Ratelimit-Reset", "9"), time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := transport.ParseSignals(tc.h, now)
			assert.Equal(t, tc.want, s.ServerWait(tc.status))
		})
	}
}

func TestParseReset(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"":                              -1,
		"1":                             time.Second,
		"0.001":                         time.Millisecond,
		"12ms":                          12 * time.Millisecond,
		"6m0s":                          6 * time.Minute,
		"1h":                            time.Hour,
		"2026-11-27T12:00:01Z":          time.Second,
		"2026-11-27T12:00:01.5+00:00":   1500 * time.Millisecond,
		"Fri, 27 Nov 2026 12:00:03 GMT": 3 * time.Second,
		"-1":                            -1,
		"-2s":                           -1,
		"1e400":                         -1,
		"ms":                            -1,
		"1.2.3":                         -1,
	} {
		assert.Equal(t, want, transport.ParseReset(in, now), "ParseReset(%q)", in)
	}
}

// Under synctest the clock starts at 2000-01-01 UTC, whose Unix time,
// 946684800, is below 1e9: a reset given as a Unix time is then a small
// number, told from a delay in seconds by lying within MaxSignalDelay of
// now. The same number far from now is a delay in seconds.
func TestParseSignalsReadsAResetNearNowAsAUnixTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		at := time.Now()
		require.Equal(t, int64(946684800), at.Unix(), "synctest's clock")
		for _, tc := range []struct {
			reset string
			want  time.Duration
		}{
			{"946684810", 10 * time.Second},
			{"946684800.25", 250 * time.Millisecond},
			{"946684800", 0},
			{"946684790", 0},                        // past: the window has reset
			{"946771200", transport.MaxSignalDelay}, // a day ahead: still a Unix time
			{"946598400", 0},                        // a day ago: still a Unix time, past
			{"946598399", transport.MaxSignalDelay}, // a second more: 30 years in seconds, capped
			{"10", 10 * time.Second},                // far from now: seconds
			{"0.3", 300 * time.Millisecond},
		} {
			s := transport.ParseSignals(header("X-Ratelimit-Reset", tc.reset), at)
			assert.Equal(t, tc.want, s.Requests.Reset, "x-ratelimit-reset: %s", tc.reset)
			s = transport.ParseSignals(header("X-Ratelimit-Reset-Requests", tc.reset), at)
			assert.Equal(t, tc.want, s.Requests.Reset, "x-ratelimit-reset-requests: %s", tc.reset)
		}
		// Read in 2026, the first is far from now: seconds, 30 years of
		// them, capped (as a Unix time it would be long past: 0).
		s := transport.ParseSignals(header("X-Ratelimit-Reset", "946684810"), now)
		assert.Equal(t, transport.MaxSignalDelay, s.Requests.Reset)
	})
}

func TestWindowKnown(t *testing.T) {
	assert.False(t, unknown.Known())
	assert.True(t, transport.Window{Limit: -1, Remaining: 0, Reset: -1, Period: -1}.Known())
}

// openAIAnswer is a whole answer of OpenAI's, as it comes through a CDN:
// its rate headers among twenty others.
var openAIAnswer = header("Date", "Tue, 01 Dec 2026 03:00:00 GMT", "Content-Type", "application/json",
	"Connection", "keep-alive", "Access-Control-Expose-Headers", "X-Request-ID", "Openai-Organization", "org-x",
	"Openai-Processing-Ms", "512", "Openai-Version", "2020-10-01",
	"Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload",
	"X-Ratelimit-Limit-Requests", "10000", "X-Ratelimit-Limit-Tokens", "30000000",
	"X-Ratelimit-Remaining-Requests", "9999", "X-Ratelimit-Remaining-Tokens", "29999000",
	"X-Ratelimit-Reset-Requests", "6ms", "X-Ratelimit-Reset-Tokens", "2ms", "X-Request-Id", "req_abc",
	"Cf-Cache-Status", "DYNAMIC", "X-Content-Type-Options", "nosniff", "Server", "cloudflare",
	"Cf-Ray", "8f00000000000000-SJC", "Alt-Svc", `h3=":443"; ma=86400`)

// anthropicAnswer is Anthropic's, its four windows' resets RFC 3339 times.
var anthropicAnswer = header("Date", "Tue, 01 Dec 2026 03:00:00 GMT", "Content-Type", "application/json",
	"Connection", "keep-alive", "Anthropic-Organization-Id", "00000000-0000-0000-0000-000000000000", "Request-Id", "req_0",
	"Via", "1.1 google", "X-Robots-Tag", "none", "Server", "cloudflare", "Cf-Ray", "8f00000000000000-SJC",
	"Anthropic-Ratelimit-Requests-Limit", "4000", "Anthropic-Ratelimit-Requests-Remaining", "3999",
	"Anthropic-Ratelimit-Requests-Reset", "2026-12-01T03:00:01Z",
	"Anthropic-Ratelimit-Input-Tokens-Limit", "2000000", "Anthropic-Ratelimit-Input-Tokens-Remaining", "1999000",
	"Anthropic-Ratelimit-Input-Tokens-Reset", "2026-12-01T03:00:01Z",
	"Anthropic-Ratelimit-Output-Tokens-Limit", "400000", "Anthropic-Ratelimit-Output-Tokens-Remaining", "399000",
	"Anthropic-Ratelimit-Output-Tokens-Reset", "2026-12-01T03:00:01Z",
	"Anthropic-Ratelimit-Tokens-Limit", "2400000", "Anthropic-Ratelimit-Tokens-Remaining", "2398000",
	"Anthropic-Ratelimit-Tokens-Reset", "2026-12-01T03:00:01Z")

func BenchmarkParseSignals(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"plain", header("Content-Type", "application/json", "Date", "Fri, 27 Nov 2026 12:00:00 GMT", "Content-Length", "120")},
		{"together-429", header("Content-Type", "application/json", "X-Ratelimit-Reset", "0.25", "Date", "x")},
		{"openai", header("X-Ratelimit-Limit-Requests", "500", "X-Ratelimit-Remaining-Requests", "499", "X-Ratelimit-Reset-Requests", "120ms",
			"X-Ratelimit-Limit-Tokens", "30000", "X-Ratelimit-Remaining-Tokens", "29000", "X-Ratelimit-Reset-Tokens", "6m0s")},
		{"openai-answer", openAIAnswer},
		{"anthropic-answer", anthropicAnswer},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = transport.ParseSignals(bc.h, now)
			}
		})
	}
}

// ParseWindow reads one limit's three headers as ParseSignals reads
// Anthropic's: a missing or garbage field is unknown.
func TestParseWindow(t *testing.T) {
	w := transport.ParseWindow([]string{" 600 "}, []string{"42"}, []string{now.Add(2 * time.Second).Format(time.RFC3339)}, now)
	assert.Equal(t, transport.Window{Limit: 600, Remaining: 42, Reset: 2 * time.Second, Period: -1}, w)
	assert.Equal(t, transport.Window{Limit: -1, Remaining: -1, Reset: -1, Period: -1}, transport.ParseWindow(nil, nil, nil, now))
	w = transport.ParseWindow([]string{"lots"}, []string{"-3"}, []string{"1.5"}, now)
	assert.Equal(t, transport.Window{Limit: -1, Remaining: -1, Reset: 1500 * time.Millisecond, Period: -1}, w)
	sig := transport.ParseSignals(header("Anthropic-Ratelimit-Output-Tokens-Limit", "80000",
		"Anthropic-Ratelimit-Output-Tokens-Remaining", "79000", "Anthropic-Ratelimit-Output-Tokens-Reset", "2026-11-27T12:00:06Z"), now)
	assert.Equal(t, sig.Tokens, transport.ParseWindow([]string{"80000"}, []string{"79000"}, []string{"2026-11-27T12:00:06Z"}, now),
		"as ParseSignals reads the same headers")
}

// BenchmarkSharedSignals is what a stack with a token limiter per
// Anthropic limit reads of one answer: the signals, shared by its
// limiters, and the input and output token windows, read apart from the
// headers ("apart", as ParseWindow does) or kept from the shared reading
// (Info.Window). An answer of OpenAI's has the signals alone.
func BenchmarkSharedSignals(b *testing.B) {
	in := [3]string{"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"}
	out := [3]string{"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"}
	read := func(resp *http.Response, info *transport.Info, k [3]string, apart bool) transport.Window {
		if apart {
			return transport.ParseWindow(resp.Header[k[0]], resp.Header[k[1]], resp.Header[k[2]], now)
		}
		return info.Window(resp, now, k[0], k[1], k[2])
	}
	for _, c := range []struct {
		name    string
		h       http.Header
		windows bool
		apart   bool
	}{
		{"openai-answer", openAIAnswer, false, false},
		{"anthropic-answer/apart", anthropicAnswer, true, true},
		{"anthropic-answer/shared", anthropicAnswer, true, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			resp := &http.Response{StatusCode: http.StatusOK, Header: c.h}
			b.ReportAllocs()
			for b.Loop() {
				info := new(transport.Info)
				info.ShareSignals()
				if sig := info.Signals(resp, now); sig.Tokens.Limit < 0 {
					b.Fatal("no token limit")
				}
				if c.windows && (read(resp, info, in, c.apart).Limit < 0 || read(resp, info, out, c.apart).Limit < 0) {
					b.Fatal("no window")
				}
			}
		})
	}
}

// A delay too long to read (as a Duration, or in 32 characters) is a wait
// longer than any cap, never no wait; a number padded with zeros is the
// number; what is not a delay is none.
func TestHugeDelaysAreTheLongestWait(t *testing.T) {
	for _, v := range []string{"3000000h", "2562048h", "99999999999999999999s", "3000000.5h", strings.Repeat("9", 40)} {
		assert.Equal(t, transport.MaxSignalDelay, transport.ParseReset(v, now), v)
	}
	for _, k := range []string{"Retry-After", "Retry-After-Ms"} {
		assert.Equal(t, transport.MaxSignalDelay, transport.ParseSignals(http.Header{k: {strings.Repeat("9", 40)}}, now).RetryAfter, k)
	}
	assert.Equal(t, 5*time.Second, transport.ParseSignals(http.Header{"Retry-After": {strings.Repeat("0", 40) + "5"}}, now).RetryAfter)
	for _, v := range []string{"3000000hx", "1x", "-3000000h", ".h", strings.Repeat("9", 40) + "x"} {
		assert.Equal(t, time.Duration(-1), transport.ParseReset(v, now), v)
	}
}
