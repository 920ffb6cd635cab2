package transport_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steadyapi/steady/transport"
)

// validDelay holds for every delay ParseSignals or ParseReset reports: -1
// (not sent) or within [0, MaxSignalDelay].
func validDelay(d time.Duration) bool {
	return d == -1 || (d >= 0 && d <= transport.MaxSignalDelay)
}

// validWindow holds for every window ParseSignals reports: counts -1 or
// not negative, a valid reset, and a period that is -1 or more than 0 and
// at most a year, which only comes with a limit.
func validWindow(w transport.Window) bool {
	switch {
	case (w.Limit < 0 && w.Limit != -1) || (w.Remaining < 0 && w.Remaining != -1):
		return false
	case !validDelay(w.Reset):
		return false
	case w.Period == -1:
		return true
	}
	return w.Period > 0 && w.Period <= 366*24*time.Hour && w.Limit >= 0
}

// checkSignals fails t when s breaks what ParseSignals promises.
func checkSignals(t *testing.T, h http.Header, s transport.Signals) {
	t.Helper()
	if !validDelay(s.RetryAfter) {
		t.Fatalf("%q: RetryAfter out of range: %+v", h, s)
	}
	for _, w := range []transport.Window{s.Requests, s.Tokens} {
		if !validWindow(w) {
			t.Fatalf("%q: invalid window %+v", h, w)
		}
	}
	for _, st := range []int{200, 429, 503} {
		if d := s.ServerWait(st); !validDelay(d) {
			t.Fatalf("%q: ServerWait(%d) = %v", h, st, d)
		}
	}
}

func FuzzParseSignals(f *testing.F) {
	for _, seed := range [][2]string{
		{"Retry-After", "3"}, {"Retry-After", "Fri, 27 Nov 2026 12:00:05 GMT"}, {"Retry-After-Ms", "12.5"},
		{"X-Ratelimit-Reset", "0.25"}, {"X-Ratelimit-Reset-Requests", "6m0s"}, {"X-Should-Retry", "true"},
		{"Anthropic-Ratelimit-Tokens-Reset", "2026-11-27T12:00:30Z"}, {"X-Tokenlimit-Remaining", "1e3"},
		{"X-Ratelimit-Reset", "1795780804250"}, {"X-Ratelimit-Limit", "10, 10;w=1, 100;w=60"},
		{"Ratelimit", "limit=3, remaining=2, reset=10"}, {"Ratelimit", `"3-in-10sec"; r=2; t=10`},
		{"Ratelimit-Policy", `"3-in-10sec"; q=3; w=10; pk=:MTJjYTE3YjQ5YWYy:`}, {"Ratelimit-Policy", "10;w=1, 50;w=60"},
		{"Ratelimit-Limit", "10, 10;w=1"}, {"Ratelimit-Remaining", "2"}, {"Ratelimit-Reset", "10"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		h := http.Header{http.CanonicalHeaderKey(key): {val}}
		checkSignals(t, h, transport.ParseSignals(h, now))
	})
}

// FuzzParseSignalsIETF gives the two IETF fields that refer to each other,
// RateLimit-Policy and RateLimit, arbitrary values, a field line for each
// line of the input.
func FuzzParseSignalsIETF(f *testing.F) {
	for _, seed := range [][2]string{
		{"3;w=10", "limit=3, remaining=2, reset=10"},
		{`"3-in-10sec"; q=3; w=10; pk=:MTJjYTE3YjQ5YWYy:`, `"3-in-10sec"; r=2; t=10`},
		{"\"5-in-1sec\"; q=5; w=1; pk=:MTJjYTE3YjQ5YWYy:\n\"3-in-1min\"; q=3; w=60; pk=:MTJjYTE3YjQ5YWYy:",
			"\"5-in-1sec\"; r=2; t=1\n\"3-in-1min\"; r=0; t=60"},
		{`"permin";q=50;w=60, "perhr";q=1000;w=3600`, `"permin";r=20;t=23, "perhr";r=399;t=2402`},
		{`"tpm";q=100000;qu="tokens";w=60, "b";q=1;qu="content-bytes";w=0`, `"tpm";r=5;t=1.5, "b";r=0`},
		{`default;q=100;w=10;x=?1;y=@1795780800;z=%"caf%c3%a9", ("a" "b");q=1`, `default;r=50;t=1795780804`},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, policy, state string) {
		h := http.Header{"Ratelimit-Policy": strings.Split(policy, "\n"), "Ratelimit": strings.Split(state, "\n")}
		checkSignals(t, h, transport.ParseSignals(h, now))
	})
}

// FuzzRateLimitFields writes the same window in each IETF draft's form, as
// a server would from the fuzzed numbers, and checks that every form reads
// back as written.
func FuzzRateLimitFields(f *testing.F) {
	f.Add("default", uint64(100), uint64(99), uint64(10), uint64(60))
	f.Add(`a"b\c`, uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add("3-in-1min", uint64(999999999999999), uint64(1), uint64(86401), uint64(31622401))
	f.Fuzz(func(t *testing.T, name string, q, r, reset, w uint64) {
		// Integers have at most 15 digits; resets of 1e9 and more are Unix
		// times, which ParseReset's own tests cover.
		q, r, reset, w = q%1e15, r%1e15, reset%1e9, w%1e15
		var quoted strings.Builder
		for _, c := range []byte(name) {
			if c < 0x20 || c > 0x7e {
				t.Skip("a String holds printable ASCII only")
			}
			if c == '"' || c == '\\' {
				quoted.WriteByte('\\')
			}
			quoted.WriteByte(c)
		}
		want := transport.Window{
			Limit:     float64(q),
			Remaining: float64(r),
			Reset:     min(time.Duration(reset)*time.Second, transport.MaxSignalDelay),
			Period:    -1,
		}
		if w > 0 && w <= 366*24*3600 {
			want.Period = time.Duration(w) * time.Second
		}
		for _, h := range []http.Header{
			{
				"Ratelimit-Policy": {fmt.Sprintf(`"%s"; q=%d; w=%d; pk=:AAAA:`, quoted.String(), q, w)},
				"Ratelimit":        {fmt.Sprintf(`"%s"; r=%d; t=%d`, quoted.String(), r, reset)},
			},
			{
				"Ratelimit-Policy": {fmt.Sprintf("%d;w=%d", q, w)},
				"Ratelimit":        {fmt.Sprintf("limit=%d, remaining=%d, reset=%d", q, r, reset)},
			},
			{
				"Ratelimit-Policy":    {fmt.Sprintf("%d;w=%d", q, w)},
				"Ratelimit-Limit":     {fmt.Sprint(q)},
				"Ratelimit-Remaining": {fmt.Sprint(r)},
				"Ratelimit-Reset":     {fmt.Sprint(reset)},
			},
		} {
			s := transport.ParseSignals(h, now)
			if s.Requests != want || s.Tokens != unknown {
				t.Fatalf("%q: read %+v and %+v, want %+v", h, s.Requests, s.Tokens, want)
			}
		}
	})
}

func FuzzParseReset(f *testing.F) {
	for _, seed := range []string{"1", "0.5", "12ms", "6m0s", "2026-11-27T12:00:01Z", "Fri, 27 Nov 2026 12:00:03 GMT", "1795780804", "-1", "1e12"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, val string) {
		if d := transport.ParseReset(val, now); !validDelay(d) {
			t.Fatalf("ParseReset(%q) = %v", val, d)
		}
	})
}
