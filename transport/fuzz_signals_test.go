package transport_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/steadyapi/steady/transport"
)

// validDelay holds for every delay ParseSignals or ParseReset reports: -1
// (not sent) or within [0, MaxSignalDelay].
func validDelay(d time.Duration) bool {
	return d == -1 || (d >= 0 && d <= transport.MaxSignalDelay)
}

func FuzzParseSignals(f *testing.F) {
	for _, seed := range [][2]string{
		{"Retry-After", "3"}, {"Retry-After", "Fri, 27 Nov 2026 12:00:05 GMT"}, {"Retry-After-Ms", "12.5"},
		{"X-Ratelimit-Reset", "0.25"}, {"X-Ratelimit-Reset-Requests", "6m0s"}, {"X-Should-Retry", "true"},
		{"Anthropic-Ratelimit-Tokens-Reset", "2026-11-27T12:00:30Z"}, {"X-Tokenlimit-Remaining", "1e3"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, key, val string) {
		h := http.Header{http.CanonicalHeaderKey(key): {val}}
		s := transport.ParseSignals(h, now)
		if !validDelay(s.RetryAfter) || !validDelay(s.Requests.Reset) || !validDelay(s.Tokens.Reset) {
			t.Fatalf("%q: %q gave a delay out of range: %+v", key, val, s)
		}
		for _, w := range []transport.Window{s.Requests, s.Tokens} {
			if (w.Limit < 0 && w.Limit != -1) || (w.Remaining < 0 && w.Remaining != -1) {
				t.Fatalf("%q: %q gave a negative count: %+v", key, val, w)
			}
		}
		for _, st := range []int{200, 429, 503} {
			if d := s.ServerWait(st); !validDelay(d) {
				t.Fatalf("ServerWait(%d) = %v", st, d)
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
