package transport_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// fields builds a header from key, value pairs, adding a field line for
// each pair, so that a key given twice has two lines, as a server that
// appends the field twice sends it.
func fields(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func window(limit, remaining float64, reset, period time.Duration) transport.Window {
	return transport.Window{Limit: limit, Remaining: remaining, Reset: reset, Period: period}
}

const sec = time.Second

// What express-rate-limit sends, copied from its answers (6.11.2 for draft
// 6 and 7, 7.5.1 and 8.7.5 for draft 8; windowMs 10000 and limit 3, or two
// limiters of 5 a second and 3 a minute on one route).
func TestParseSignalsExpressRateLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		h        http.Header
		requests transport.Window
	}{
		{
			"draft-6",
			fields("RateLimit-Policy", "3;w=10", "RateLimit-Limit", "3", "RateLimit-Remaining", "2", "RateLimit-Reset", "10"),
			window(3, 2, 10*sec, 10*sec),
		},
		{
			"draft-6 with legacy headers (standardHeaders: true)",
			fields("X-RateLimit-Limit", "3", "X-RateLimit-Remaining", "1", "X-RateLimit-Reset", "1795780810",
				"RateLimit-Policy", "3;w=10", "RateLimit-Limit", "3", "RateLimit-Remaining", "1", "RateLimit-Reset", "10"),
			window(3, 1, 10*sec, 10*sec),
		},
		{
			"draft-6 two limiters: the last one set wins each field",
			fields("RateLimit-Policy", "3;w=60", "RateLimit-Limit", "3", "RateLimit-Remaining", "0", "RateLimit-Reset", "60",
				"Retry-After", "60"),
			window(3, 0, 60*sec, 60*sec),
		},
		{
			"draft-7",
			fields("RateLimit-Policy", "3;w=10", "RateLimit", "limit=3, remaining=2, reset=10"),
			window(3, 2, 10*sec, 10*sec),
		},
		{
			"draft-8",
			fields("RateLimit", `"3-in-10sec"; r=2; t=10`, "RateLimit-Policy", `"3-in-10sec"; q=3; w=10; pk=:MTJjYTE3YjQ5YWYy:`),
			window(3, 2, 10*sec, 10*sec),
		},
		{
			"draft-8 two limiters, the long one binds",
			fields(
				"RateLimit", `"5-in-1sec"; r=2; t=1`, "RateLimit", `"3-in-1min"; r=0; t=60`,
				"RateLimit-Policy", `"5-in-1sec"; q=5; w=1; pk=:MTJjYTE3YjQ5YWYy:`,
				"RateLimit-Policy", `"3-in-1min"; q=3; w=60; pk=:MTJjYTE3YjQ5YWYy:`,
				"Retry-After", "60"),
			window(3, 0, 60*sec, 60*sec),
		},
		{
			"draft-8 two limiters, the short one binds",
			fields(
				"RateLimit", `"5-in-1sec"; r=1; t=1`, "RateLimit", `"100-in-1min"; r=90; t=60`,
				"RateLimit-Policy", `"5-in-1sec"; q=5; w=1; pk=:MTJjYTE3YjQ5YWYy:`,
				"RateLimit-Policy", `"100-in-1min"; q=100; w=60; pk=:MTJjYTE3YjQ5YWYy:`),
			window(5, 1, 1*sec, 1*sec),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := transport.ParseSignals(tc.h, now)
			assert.Equal(t, tc.requests, s.Requests, "requests")
			assert.Equal(t, unknown, s.Tokens, "tokens")
		})
	}
}

func TestParseSignalsIETF(t *testing.T) {
	for _, tc := range []struct {
		name             string
		h                http.Header
		requests, tokens transport.Window
	}{
		// Draft 8 and later.
		{
			"several policies in one line, matched by name",
			fields("RateLimit-Policy", `"permin";q=50;w=60, "perhr";q=1000;w=3600`,
				"RateLimit", `"perhr";r=399;t=2402, "permin";r=20;t=23`),
			window(50, 20, 23*sec, 60*sec), unknown,
		},
		{
			"as many remaining: the later reset binds",
			fields("RateLimit-Policy", `"a";q=10;w=1, "b";q=100;w=60`, "RateLimit", `"a";r=5;t=1, "b";r=5;t=30`),
			window(100, 5, 30*sec, 60*sec), unknown,
		},
		{
			"names as tokens",
			fields("RateLimit-Policy", "default;q=100;w=10", "RateLimit", "default;r=50;t=5"),
			window(100, 50, 5*sec, 10*sec), unknown,
		},
		{
			"a name with escapes",
			fields("RateLimit-Policy", `"a\"b";q=7;w=2, "a";q=1;w=1`, "RateLimit", `"a\"b";r=3;t=1`),
			window(7, 3, 1*sec, 2*sec), unknown,
		},
		{
			"an item whose policy is not sent counts requests",
			fields("RateLimit", `"x";r=5;t=2`),
			window(-1, 5, 2*sec, -1), unknown,
		},
		{
			"an item without a reset",
			fields("RateLimit-Policy", `"d";q=10;w=1`, "RateLimit", `"d";r=4`),
			window(10, 4, -1, 1*sec), unknown,
		},
		{
			"a decimal reset",
			fields("RateLimit", `"d";r=4;t=1.5`),
			window(-1, 4, 1500*time.Millisecond, -1), unknown,
		},
		{
			"a Unix time for a reset",
			fields("RateLimit", `"d";r=0;t=1795780810`),
			window(-1, 0, 10*sec, -1), unknown,
		},
		{
			"quota in tokens",
			fields("RateLimit-Policy", `"fairshare";q=1000;qu="tokens";w=60`, "RateLimit", `"fairshare";r=0;t=77`),
			unknown, window(1000, 0, 77*sec, 60*sec),
		},
		{
			"requests and tokens side by side",
			fields("RateLimit-Policy", `"rpm";q=60;w=60, "tpm";q=100000;qu="tokens";w=60, "itpm";q=5000;qu="input-tokens";w=60`,
				"RateLimit", `"rpm";r=59;t=30, "tpm";r=90000;t=30, "itpm";r=4000;t=20`),
			window(60, 59, 30*sec, 60*sec), window(5000, 4000, 20*sec, 60*sec),
		},
		{
			"quota units that are no rate of requests or tokens are left out",
			fields("RateLimit-Policy", `"peruser";q=65535;qu="content-bytes";w=10, "conc";q=4;qu="concurrent-requests";w=0`,
				"RateLimit", `"peruser";r=100;t=5, "conc";r=1`),
			unknown, unknown,
		},
		{
			"the unit requests, named",
			fields("RateLimit-Policy", `"d";q=10;qu="requests";w=1`, "RateLimit", `"d";r=9;t=1`),
			window(10, 9, 1*sec, 1*sec), unknown,
		},
		{
			"policies alone: the lowest rate binds",
			fields("RateLimit-Policy", `"burst";q=10;w=1, "hour";q=1000;w=3600`),
			window(1000, -1, -1, time.Hour), unknown,
		},
		{
			"policies alone, of which only numbers and names are policies",
			fields("RateLimit-Policy", `("a" "b");q=1;w=100, ?1;q=2;w=100, :AAAA:;q=3;w=100, "d";q=50;w=10`),
			window(50, -1, -1, 10*sec), unknown,
		},
		{
			"policies alone, for tokens beside a request window",
			fields("RateLimit-Policy", `"rpm";q=60;w=60, "tpm";q=9000;qu="tokens";w=60`, "RateLimit", `"rpm";r=1;t=3`),
			window(60, 1, 3*sec, 60*sec), window(9000, -1, -1, 60*sec),
		},
		{
			"unknown parameters, inner lists and other bare items are skipped",
			fields("RateLimit-Policy", `"d";q=10;w=1;acme-burst=5;x=?1;y=@1795780800;z=%"caf%c3%a9", ("a" "b");q=1;w=100`,
				"RateLimit", `"d";r=1;t=2;pk=:cHsdsRa894==:, ("x");r=0;t=9, 3;r=0;t=9`),
			window(10, 1, 2*sec, 1*sec), unknown,
		},
		{
			"optional whitespace around commas, spaces after semicolons",
			fields("RateLimit-Policy", "\"a\";  q=10; w=1 ,\t\"b\";q=5;w=1", "RateLimit", " \"a\";r=6;t=1\t, \"b\"; r=2; t=1 "),
			window(5, 2, 1*sec, 1*sec), unknown,
		},

		// Draft 7.
		{
			"draft 7 with several policies, matched by limit",
			fields("RateLimit-Policy", "10;w=1, 100;w=60", "RateLimit", "limit=100, remaining=50, reset=30"),
			window(100, 50, 30*sec, 60*sec), unknown,
		},
		{
			"draft 7, a window a line",
			fields("RateLimit", "limit=5, remaining=4, reset=1", "RateLimit", "limit=3, remaining=1, reset=60"),
			window(3, 1, 60*sec, -1), unknown,
		},
		{
			"draft 7, the last of a key wins",
			fields("RateLimit", "limit=5, remaining=4, reset=1, remaining=2"),
			window(5, 2, 1*sec, -1), unknown,
		},
		{
			"draft 7, a malformed line of two is skipped",
			fields("RateLimit", "limit=5, remaining=4, reset=1", "RateLimit", "Limit=3, remaining=0, reset=60"),
			window(5, 4, 1*sec, -1), unknown,
		},

		// Draft 6 and earlier.
		{
			"draft 6 with several policies, matched by limit",
			fields("RateLimit-Policy", "10;w=1, 50;w=60", "RateLimit-Limit", "50", "RateLimit-Remaining", "3", "RateLimit-Reset", "20"),
			window(50, 3, 20*sec, 60*sec), unknown,
		},
		{
			"of policies with the limit's quota, the longest window",
			fields("RateLimit-Policy", "10;w=1, 10;w=60", "RateLimit-Limit", "10"),
			window(10, -1, -1, 60*sec), unknown,
		},
		{
			"a limit no policy has",
			fields("RateLimit-Policy", "10;w=1", "RateLimit-Limit", "7", "RateLimit-Remaining", "3"),
			window(7, 3, -1, -1), unknown,
		},
		{
			"policies listed in the limit (the earliest drafts)",
			fields("RateLimit-Limit", "10, 10;w=1, 50;w=60", "RateLimit-Remaining", "9", "RateLimit-Reset", "1"),
			window(10, 9, 1*sec, 1*sec), unknown,
		},
		{
			"Envoy's X-RateLimit-Limit",
			fields("X-Ratelimit-Limit", "10, 10;w=1, 100;w=60", "X-Ratelimit-Remaining", "2", "X-Ratelimit-Reset", "1"),
			window(10, 2, 1*sec, 1*sec), unknown,
		},
		{
			"a limit and a policy with the same quota twice",
			fields("X-Ratelimit-Limit", "10, 10;w=1, 10;w=1"),
			window(10, -1, -1, 1*sec), unknown,
		},

		// Dialects together, and what is malformed.
		{
			"IETF and legacy headers fold field by field",
			fields("X-Ratelimit-Limit", "100", "X-Ratelimit-Remaining", "50", "X-Ratelimit-Reset", "2",
				"RateLimit-Policy", `"d";q=20;w=10`, "RateLimit", `"d";r=10;t=5`),
			window(20, 10, 5*sec, 10*sec), unknown,
		},
		{
			"an equal limit from a dialect without periods keeps the period",
			fields("X-Ratelimit-Limit", "20", "RateLimit-Policy", `"d";q=20;w=10`, "RateLimit", `"d";r=10;t=5`),
			window(20, 10, 5*sec, 10*sec), unknown,
		},
		{
			"a malformed policy field names no policy",
			fields("RateLimit-Policy", `"a";q=10;w=1, "b`, "RateLimit", `"a";r=1;t=1`),
			window(-1, 1, 1*sec, -1), unknown,
		},
		{
			"a malformed line spoils the whole field",
			fields("RateLimit-Policy", `"a";q=10;w=1`, "RateLimit-Policy", `"b";q=1;w=1;`, "RateLimit", `"a";r=1;t=1`),
			window(-1, 1, 1*sec, -1), unknown,
		},
		{
			"a malformed RateLimit field leaves the policy",
			fields("RateLimit-Policy", `"a";q=10;w=1`, "RateLimit", `"a";r=1;t=1,`),
			window(10, -1, -1, 1*sec), unknown,
		},
		{
			"no space before a semicolon",
			fields("RateLimit", `"a" ;r=1;t=1`),
			unknown, unknown,
		},
		{
			"numbers of more than 15 digits are malformed",
			fields("RateLimit", `"a";r=1234567890123456;t=1`),
			unknown, unknown,
		},
		{
			"decimals of more than 3 places are malformed",
			fields("RateLimit", `"a";r=1;t=1.0001`),
			unknown, unknown,
		},
		{
			"an unterminated string",
			fields("RateLimit", `"a;r=1;t=1`),
			unknown, unknown,
		},
		{
			"negative values and values of the wrong type are ignored",
			fields("RateLimit-Policy", `"a";q=-10;w=-1`, "RateLimit", `"a";r=-1;t="5"`,
				"RateLimit-Remaining", "-2", "RateLimit-Reset", "-3"),
			unknown, unknown,
		},
		{
			"draft 7 negatives",
			fields("RateLimit", "limit=-3, remaining=-1, reset=-5"),
			unknown, unknown,
		},
		{
			"a window of 0, or longer than a year, is no period",
			fields("RateLimit-Policy", `"a";q=10;w=0, "b";q=20;w=99999999999`, "RateLimit", `"a";r=5;t=1, "b";r=6;t=2`),
			window(10, 5, 1*sec, -1), unknown,
		},
		{
			"a policy without a quota gives no period: a period belongs to a limit",
			fields("RateLimit-Policy", `"a";w=10`, "RateLimit", `"a";r=5;t=1`),
			window(-1, 5, 1*sec, -1), unknown,
		},
		{
			"garbage",
			fields("RateLimit", "\x00\xff", "RateLimit-Policy", "((", "RateLimit-Limit", "lots", "RateLimit-Reset", "later"),
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

// Of more items than are read, the first are read: a hostile server cannot
// make a client match thousands of items against thousands of policies.
func TestParseSignalsIETFBoundsItems(t *testing.T) {
	var policy, state []byte
	for i := range 1000 {
		if i > 0 {
			policy, state = append(policy, ", "...), append(state, ", "...)
		}
		policy = append(policy, `"p";q=100;w=60`...)
		// The first 16 items leave 16 down to 1, the others nothing.
		state = fmt.Appendf(state, `"p";r=%d`, max(16-i, 0))
	}
	s := transport.ParseSignals(fields("RateLimit-Policy", string(policy), "RateLimit", string(state)), now)
	assert.Equal(t, window(100, 1, -1, 60*sec), s.Requests)
}

func TestServerWaitIETF(t *testing.T) {
	h := fields("RateLimit-Policy", `"a";q=3;w=10`, "RateLimit", `"a";r=0;t=7`)
	s := transport.ParseSignals(h, now)
	assert.Equal(t, 7*sec, s.ServerWait(http.StatusTooManyRequests))
	assert.Equal(t, time.Duration(-1), s.ServerWait(http.StatusOK))

	h.Set("Retry-After", "9")
	s = transport.ParseSignals(h, now)
	assert.Equal(t, 9*sec, s.ServerWait(http.StatusTooManyRequests), "Retry-After takes precedence, as the drafts say")
}

// The IETF fields are read from canonical keys, as net/http delivers them:
// "RateLimit" becomes "Ratelimit".
func TestParseSignalsIETFCanonicalKeys(t *testing.T) {
	h := fields("RateLimit", `"a";r=1;t=2`)
	_, ok := h["Ratelimit"]
	require.True(t, ok)
	assert.Equal(t, window(-1, 1, 2*sec, -1), transport.ParseSignals(h, now).Requests)
}

func TestParseResetUnixTimes(t *testing.T) {
	// now is 2026-11-27T12:00:00Z, 1795780800 in Unix seconds.
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"1795780804", 4 * sec},
		{"1795780804.5", 4500 * time.Millisecond},
		{"1795780804123", 4123 * time.Millisecond},
		{"1795780804123456", 4123456 * time.Microsecond},
		{"1795780700", 0},                            // in the past: the window has reset
		{"1795780700000", 0},                         // the same, in milliseconds
		{"1000000000", 0},                            // 2001: long past is past
		{"100000000000", 0},                          // 1973, in milliseconds
		{"1795867200000", transport.MaxSignalDelay},  // a day ahead: capped
		{"99999999999", transport.MaxSignalDelay},    // the year 5138 in seconds
		{"99999999999999", transport.MaxSignalDelay}, // and in milliseconds
		{"1e20", transport.MaxSignalDelay},           // no date in any unit: a wait without end
		{"1e300", transport.MaxSignalDelay},
		{"999999999", transport.MaxSignalDelay}, // a delay, however long
		{"86400", transport.MaxSignalDelay},
		{"86399.5", 86399500 * time.Millisecond},
	} {
		assert.Equal(t, tc.want, transport.ParseReset(tc.in, now), "ParseReset(%q)", tc.in)
	}
	// Nanoseconds, past the precision of a float64.
	assert.InDelta(t, float64(4123456789*time.Nanosecond), float64(transport.ParseReset("1795780804123456789", now)), float64(time.Microsecond))
}

func BenchmarkParseSignalsIETF(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    http.Header
	}{
		{"draft-6", fields("RateLimit-Policy", "3;w=10", "RateLimit-Limit", "3", "RateLimit-Remaining", "2", "RateLimit-Reset", "10")},
		{"draft-7", fields("RateLimit-Policy", "3;w=10", "RateLimit", "limit=3, remaining=2, reset=10")},
		{"draft-8", fields("RateLimit", `"3-in-10sec"; r=2; t=10`, "RateLimit-Policy", `"3-in-10sec"; q=3; w=10; pk=:MTJjYTE3YjQ5YWYy:`)},
		{"draft-8-two", fields(
			"RateLimit", `"5-in-1sec"; r=2; t=1`, "RateLimit", `"3-in-1min"; r=0; t=60`,
			"RateLimit-Policy", `"5-in-1sec"; q=5; w=1; pk=:MTJjYTE3YjQ5YWYy:`,
			"RateLimit-Policy", `"3-in-1min"; q=3; w=60; pk=:MTJjYTE3YjQ5YWYy:`)},
		{"envoy", fields("X-Ratelimit-Limit", "10, 10;w=1, 100;w=60", "X-Ratelimit-Remaining", "2", "X-Ratelimit-Reset", "1")},
		{"legacy-unix-ms", fields("X-Ratelimit-Limit", "3", "X-Ratelimit-Remaining", "2", "X-Ratelimit-Reset", "1795780804250")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = transport.ParseSignals(bc.h, now)
			}
		})
	}
}

// A server with two policies, as express-rate-limit writes them for two
// limiters on one route: the one with fewer requests left binds, with its
// own reset and window.
func ExampleParseSignals_ietf() {
	h := http.Header{}
	h.Add("RateLimit-Policy", `"5-in-1sec"; q=5; w=1; pk=:MTJjYTE3YjQ5YWYy:`)
	h.Add("RateLimit-Policy", `"100-in-1min"; q=100; w=60; pk=:MTJjYTE3YjQ5YWYy:`)
	h.Add("RateLimit", `"5-in-1sec"; r=4; t=1`)
	h.Add("RateLimit", `"100-in-1min"; r=2; t=42`)
	s := transport.ParseSignals(h, time.Now())
	w := s.Requests
	fmt.Printf("%v left of %v per %v, for %v\n", w.Remaining, w.Limit, w.Period, w.Reset)
	// Output:
	// 2 left of 100 per 1m0s, for 42s
}
