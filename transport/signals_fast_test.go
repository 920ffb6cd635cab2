package transport

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The fast paths of ParseSignals each stand for a general reading that
// stays behind them: for every input a fast path accepts, it must give
// what the general one does. These tests hold them to it.

// trimValue is strings.TrimSpace, whatever the bytes at either end.
func FuzzTrimValue(f *testing.F) {
	for _, s := range []string{"", " ", "1", " 1", "1 ", "\t1\r\n", "\u00a01\u00a0", "1\u0085", "\u2003x", "\x00", "\x7f", "a\xff", "\xffa"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := trimValue(s), strings.TrimSpace(s); got != want {
			t.Fatalf("trimValue(%q) = %q, TrimSpace gives %q", s, got, want)
		}
	})
}

// parseWholeDuration gives what time.ParseDuration does, for every string
// it accepts; and it accepts the whole-number forms OpenAI sends.
func FuzzParseWholeDuration(f *testing.F) {
	for _, s := range []string{"6m0s", "12ms", "1h2m3s", "0s", "1.5s", "-1s", "+1s", "1µs", "1us", "3ns", "1", "s", "1m.s",
		"2562047h47m16s854ms775us807ns", "2562047h47m16s854ms775us808ns", "9223372036854775807ns", "9223372036854775808ns",
		"99999999999999999999s", "1hh", "1sm", "01s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseWholeDuration(s)
		if !ok {
			return
		}
		want, err := time.ParseDuration(s)
		if err != nil || got != want {
			t.Fatalf("parseWholeDuration(%q) = %v; ParseDuration gives %v, %v", s, got, want, err)
		}
	})
}

func TestParseWholeDurationAccepts(t *testing.T) {
	for _, s := range []string{"6m0s", "12ms", "1h2m3s", "0s", "20ns", "7us", "2562047h47m16s854ms775us807ns"} {
		if _, ok := parseWholeDuration(s); !ok {
			t.Errorf("%q not read", s)
		}
	}
	for _, s := range []string{"", "1", "1.5s", "-1s", "+1s", "1µs", "2562047h47m16s854ms775us808ns", "1x"} {
		if _, ok := parseWholeDuration(s); ok {
			t.Errorf("%q read: time.ParseDuration must", s)
		}
	}
}

// parseRFC3339Seconds gives the instant time.Parse does, for every string
// it accepts.
func FuzzParseRFC3339Seconds(f *testing.F) {
	for _, s := range []string{"2026-12-01T03:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2024-02-29T12:00:00Z",
		"2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T03:00:60Z",
		"2026-13-01T03:00:00Z", "2026-00-01T03:00:00Z", "2026-12-00T03:00:00Z", "2026-12-01t03:00:00Z", "2026-12-01T03:00:00.5Z",
		"2026-12-01T03:00:00+01:00", "+026-12-01T03:00:00Z", "2026-1a-01T03:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseRFC3339Seconds(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !got.Equal(want) {
			t.Fatalf("parseRFC3339Seconds(%q) = %v; time.Parse gives %v, %v", s, got, want, err)
		}
	})
}

// Every day of the years providers' resets and tests' clocks fall in, and
// the ends of the range, against time.Parse.
func TestParseRFC3339SecondsDays(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, ok := parseRFC3339Seconds(s)
		want, err := time.Parse(time.RFC3339Nano, s)
		if !ok || err != nil || !got.Equal(want) {
			t.Fatalf("%q: %v %v; time.Parse gives %v, %v", s, got, ok, want, err)
		}
	}
	for d := time.Date(1899, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() < 2201; d = d.AddDate(0, 0, 1) {
		check(d.Format("2006-01-02") + "T23:59:59Z")
	}
	for _, y := range []int{0, 1, 4, 99, 100, 399, 400, 401, 1600, 1970, 9996, 9999} {
		for _, md := range []string{"01-01", "02-28", "03-01", "12-31"} {
			check(fmt.Sprintf("%04d-%sT00:00:00Z", y, md))
		}
	}
	for _, s := range []string{"2023-02-29T12:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-01T24:00:00Z",
		"2026-12-01T03:60:00Z", "2026-12-01T03:00:60Z", "2026-12-01T03:00:00.5Z", "2026-12-01T03:00:00+00:00", "2026-12-01 03:00:00Z"} {
		if _, ok := parseRFC3339Seconds(s); ok {
			t.Errorf("%q read", s)
		}
	}
}

// generalReset is ParseReset with no fast path: what it read before them.
func generalReset(val string, now time.Time) time.Duration {
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
		if d, err := time.ParseDuration(val); err == nil {
			if d < 0 {
				return -1
			}
			return min(d, MaxSignalDelay)
		}
		if unsignedDuration(val) {
			return MaxSignalDelay
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

// ParseReset, fast paths and all, reads every value as the general
// reading does, at instants before, at and after the resets it is given.
func FuzzParseResetFast(f *testing.F) {
	for _, s := range []string{"1", "6m0s", "12ms", "1.5s", "2026-11-27T12:00:01Z", "2026-11-27T12:00:01.5Z", "2026-11-28T12:00:01Z",
		"2026-11-27T11:59:59Z", "2026-11-27T12:00:01+01:00", "Fri, 27 Nov 2026 12:00:03 GMT", "2562047h47m16s854ms775us808ns"} {
		f.Add(s, int64(0))
	}
	base := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, val string, off int64) {
		now := base.Add(time.Duration(off))
		if got, want := ParseReset(val, now), generalReset(val, now); got != want {
			t.Fatalf("ParseReset(%q, %v) = %v, the general reading %v", val, now, got, want)
		}
	})
}

// ParseSignals trims a value only where it reads it: padded or not, and
// with every kind of space at its ends, each header reads the same.
func TestParseSignalsTrimsWhatItReads(t *testing.T) {
	base := http.Header{
		"Retry-After": {"3"}, "Retry-After-Ms": {"250"}, "X-Should-Retry": {"true"},
		"X-Ratelimit-Limit": {"100"}, "X-Ratelimit-Remaining": {"99"}, "X-Ratelimit-Reset": {"1"},
		"X-Ratelimit-Limit-Tokens": {"1000"}, "X-Ratelimit-Remaining-Tokens": {"900"}, "X-Ratelimit-Reset-Tokens": {"6m0s"},
		"X-Tokenlimit-Limit": {"2000"}, "X-Tokenlimit-Remaining": {"1500"},
		"Ratelimit-Limit": {"10"}, "Ratelimit-Remaining": {"4"}, "Ratelimit-Reset": {"7"},
		"Anthropic-Ratelimit-Requests-Reset": {"2026-11-27T12:00:05Z"},
	}
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	want := ParseSignals(base, now)
	for _, pad := range []string{" ", "\t", " \r\n", "\u00a0", "\u2003", "\u0085"} {
		h := http.Header{}
		for k, v := range base {
			h[k] = []string{pad + v[0] + pad}
		}
		if got := ParseSignals(h, now); got != want {
			t.Errorf("padded with %q: %+v, want %+v", pad, got, want)
		}
	}
	// Whitespace alone is no value: no field of any window.
	h := http.Header{}
	for k := range base {
		h[k] = []string{" \t "}
	}
	got := ParseSignals(h, now)
	want = ParseSignals(http.Header{}, now)
	if got != want {
		t.Errorf("blank values: %+v, want %+v", got, want)
	}
}

// A shared reading keeps Anthropic's input and output token windows apart
// as well: each is what ParseWindow reads of its three headers, and the
// signals are what ParseSignals reads, whatever else the answer says of
// its tokens.
func FuzzSplitSignals(f *testing.F) {
	f.Add(uint16(0xffff), "2000000", "1999000", "2026-12-01T03:00:01Z", "400000", "399000", "2026-12-01T03:00:30Z", "2400000", "100", int64(0))
	f.Add(uint16(0x0155), "10, 10;w=60", " 5 ", "30", "x", "-1", "1.5", "7", "3", int64(1e9))
	f.Add(uint16(0x0092), "", "0", "6m0s", "1e3", "NaN", "Tue, 01 Dec 2026 03:00:00 GMT", "1;w=1", "1", int64(-5e9))
	f.Fuzz(func(t *testing.T, mask uint16, inL, inR, inS, outL, outR, outS, tokL, tokR string, off int64) {
		now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC).Add(time.Duration(off))
		keys := append(append([]string{}, splitKeys[0][:]...), splitKeys[1][:]...)
		keys = append(keys, "Anthropic-Ratelimit-Tokens-Limit", "X-Ratelimit-Remaining-Tokens")
		vals := []string{inL, inR, inS, outL, outR, outS, tokL, tokR}
		h := http.Header{"Content-Type": {"application/json"}}
		for i, k := range keys {
			if mask&(1<<i) != 0 {
				h[k] = []string{vals[i]}
			}
		}
		if mask&(1<<8) != 0 {
			h[splitKeys[0][0]] = []string{} // present, with no line
		}
		var split [2]Window
		if got, want := parseSignals(h, now, &split), ParseSignals(h, now); got != want {
			t.Fatalf("%v: split reading %+v, ParseSignals %+v", h, got, want)
		}
		for j, k := range splitKeys {
			if want := ParseWindow(h[k[0]], h[k[1]], h[k[2]], now); split[j] != want {
				t.Fatalf("%v: window %d %+v, ParseWindow %+v", h, j, split[j], want)
			}
		}
	})
}
