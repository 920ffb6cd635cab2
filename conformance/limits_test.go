package conformance_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

func srvChatLimit(l conformance.Limit) conformance.Config {
	return conformance.Config{Limits: map[string]conformance.Limit{conformance.Chat: l}}
}

func TestLimitBurstPerSecond(t *testing.T) {
	tests := []struct {
		rpm      float64
		burst    int
		accepted int
		reset    string // x-ratelimit-reset of the first refusal
	}{
		{rpm: 60, burst: 10, accepted: 1, reset: "1"},
		{rpm: 600, burst: 12, accepted: 10, reset: "0.1"},
		{rpm: 30, burst: 3, accepted: 1, reset: "2"},
		{rpm: 90, burst: 3, accepted: 1, reset: "0.334"}, // a bucket of 1.5: half a request left
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.rpm), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: tt.rpm}))
				var ok, refused int
				for i := range tt.burst {
					r := srvChat(t, srv, "k")
					switch r.status {
					case http.StatusOK:
						ok++
						assert.Empty(t, r.header.Get("X-Ratelimit-Reset"), "the zero Headers send nothing on success")
					case http.StatusTooManyRequests:
						refused++
						assert.Equal(t, tt.reset, r.header.Get("X-Ratelimit-Reset"), "request %d", i)
						assert.Equal(t, conformance.ErrorRequestLimited, srvErrorType(t, r.body))
						assert.Empty(t, r.header.Get("Retry-After"), "Together documents no Retry-After")
					default:
						t.Fatalf("status %d: %s", r.status, r.body)
					}
				}
				assert.Equal(t, tt.accepted, ok)
				assert.Equal(t, tt.burst-tt.accepted, refused)
				assert.Equal(t, conformance.Stats{Arrivals: tt.burst, OK: ok, TooMany: refused}, srv.Stats())
			})
		})
	}
}

// Waiting exactly the reset a 429 names is always enough.
func TestLimitResetIsEnough(t *testing.T) {
	for _, rpm := range []float64{60, 90, 600, 7} {
		t.Run(fmt.Sprint(rpm), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: rpm}))
				accepted := 0
				for accepted < 50 {
					r := srvChat(t, srv, "k")
					if r.status == http.StatusOK {
						accepted++
						continue
					}
					require.Equal(t, http.StatusTooManyRequests, r.status)
					wait := transport.ParseReset(r.header.Get("X-Ratelimit-Reset"), time.Now())
					require.Positive(t, wait)
					time.Sleep(wait)
					require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "after waiting %v", wait)
					accepted++
				}
			})
		})
	}
}

func TestLimitSteadyPerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 60}))
		for range 180 {
			require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
			time.Sleep(time.Second)
		}
		assert.Equal(t, 180, srv.Stats().OK)
	})
}

func TestLimitMinuteWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 60, Window: time.Minute}))
		time.Sleep(15 * time.Second)
		for i := range 60 { // a burst the per-second form would refuse fits a minute window
			require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "request %d", i)
		}
		r := srvChat(t, srv, "k")
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "45", r.header.Get("X-Ratelimit-Reset"), "until the window ends")
		time.Sleep(44 * time.Second)
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, srv, "k").status)
		time.Sleep(time.Second)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "a new window")
	})
}

func TestLimitMinuteWindowHeaders(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := srvChatLimit(conformance.Limit{RPM: 60, TPM: 1000, Window: time.Minute})
		cfg.Headers = conformance.HeaderEveryAnswer
		srv := conformance.NewServer(cfg)
		time.Sleep(15 * time.Second)
		var r srvReply
		for range 3 {
			r = srvChat(t, srv, "k")
		}
		assert.Equal(t, "60", r.header.Get("X-Ratelimit-Limit"), "the minute's requests")
		assert.Equal(t, "57", r.header.Get("X-Ratelimit-Remaining"))
		assert.Equal(t, "45", r.header.Get("X-Ratelimit-Reset"), "until the window ends")
		assert.Equal(t, "1000", r.header.Get("X-Tokenlimit-Limit"))
		assert.Equal(t, "994", r.header.Get("X-Tokenlimit-Remaining"), "3 requests of 2 tokens")

		// A token limit in minute windows refuses until the window ends.
		big := `{"model":"` + srvChatModel + `","messages":[],"max_tokens":995}`
		r = srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", big)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, conformance.ErrorTokenLimited, srvErrorType(t, r.body))
		assert.Equal(t, "45", r.header.Get("X-Ratelimit-Reset"))
		time.Sleep(45 * time.Second)
		assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", big).status)
	})
}

func TestLimitDynamicGrowth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const base, limitCap = 60, 150
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{Dynamic: true, Base: base, Cap: limitCap}))
		// Three requests a second (180 RPM) for 100 minutes: more than the
		// limit, so what is accepted traces it.
		perMinute := make([]int, 100)
		for m := range perMinute {
			for range 180 {
				if srvChat(t, srv, "k").status == http.StatusOK {
					perMinute[m]++
				}
				time.Sleep(time.Second / 3)
			}
		}
		t.Logf("accepted per minute: %v", perMinute)
		assert.InDelta(t, base, perMinute[5], 2, "the base at first")
		assert.InDelta(t, base, perMinute[25], 2, "2 × 60 an hour fall below the base for the first half hour")
		assert.Greater(t, perMinute[59], perMinute[25]+30, "an hour of success raised the limit")
		assert.InDelta(t, limitCap, perMinute[99], 2, "growth stops at the cap")
		for m, n := range perMinute {
			assert.LessOrEqual(t, n, limitCap+3, "minute %d above the cap", m) // +3: the bucket's burst at the window's edge
		}
	})
}

func TestLimitTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 600 TPM: 10 tokens a second, a bucket of 10.
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 6000, TPM: 600}))
		// "hello" is 5 characters: 2 tokens; with max_tokens 6, 8.
		body := `{"model":"` + srvChatModel + `","messages":[{"role":"user","content":"hello"}],"max_tokens":6}`
		require.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body).status)
		r := srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, conformance.ErrorTokenLimited, srvErrorType(t, r.body))
		assert.Equal(t, "0.6", r.header.Get("X-Ratelimit-Reset"), "2 tokens left, 8 needed, 10 a second")
		time.Sleep(600 * time.Millisecond)
		assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body).status)

		// Embeddings count their inputs' characters.
		esrv := conformance.NewServer(conformance.Config{Limits: map[string]conformance.Limit{conformance.Embeddings: {TPM: 60}}})
		input := `{"model":"` + srvEmbedModel + `","input":["` + strings.Repeat("a", 2) + `","` + strings.Repeat("b", 2) + `"]}`
		require.Equal(t, http.StatusOK, srvDo(t, esrv, http.MethodPost, "/v1/embeddings", "k", input).status, "1 token of a bucket of 1")
		r = srvDo(t, esrv, http.MethodPost, "/v1/embeddings", "k", input)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, conformance.ErrorTokenLimited, srvErrorType(t, r.body))
		assert.Equal(t, "1", r.header.Get("X-Ratelimit-Reset"))
	})
}

func TestLimitPerKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 60}))
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "a").status)
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, srv, "a").status)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "b").status, "another key has its own limit")
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "").status, "so does no key")
		// Endpoints are limited apart, and one without a limit is not limited.
		for range 5 {
			r := srvDo(t, srv, http.MethodPost, "/v1/embeddings", "a", `{"model":"`+srvEmbedModel+`","input":"x"}`)
			assert.Equal(t, http.StatusOK, r.status)
		}
	})
}

func TestLimitHeaderStyles(t *testing.T) {
	// 600 RPM and 6000 TPM: a bucket of 10 requests and 100 tokens. Ten
	// requests of 2 tokens pass; the eleventh is refused for 0.1 s.
	tests := []struct {
		name    string
		headers conformance.Headers
		ok      map[string]string // on the tenth answer, a 200; "" means absent
		refused map[string]string // on the eleventh, a 429
	}{
		{
			name: "together",
			ok:   map[string]string{"X-Ratelimit-Reset": "", "X-Ratelimit-Limit": "", "Retry-After": ""},
			refused: map[string]string{
				"X-Ratelimit-Reset": "0.1", "X-Ratelimit-Limit": "", "Retry-After": "",
				"X-Ratelimit-Reset-Requests": "", "Anthropic-Ratelimit-Requests-Reset": "",
			},
		},
		{
			name:    "every answer",
			headers: conformance.HeaderEveryAnswer,
			ok: map[string]string{
				"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "1",
				"X-Tokenlimit-Limit": "100", "X-Tokenlimit-Remaining": "80",
			},
			refused: map[string]string{
				"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "0.1",
				"X-Tokenlimit-Limit": "100", "X-Tokenlimit-Remaining": "80", "Retry-After": "",
			},
		},
		{
			name:    "retry-after",
			headers: conformance.HeaderRetryAfter,
			ok:      map[string]string{"Retry-After": ""},
			refused: map[string]string{"Retry-After": "1", "X-Ratelimit-Reset": "0.1"},
		},
		{
			name:    "openai",
			headers: conformance.HeaderOpenAI,
			ok: map[string]string{
				"X-Ratelimit-Limit-Requests": "10", "X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "1s",
				"X-Ratelimit-Limit-Tokens": "100", "X-Ratelimit-Remaining-Tokens": "80", "X-Ratelimit-Reset-Tokens": "200ms",
				"X-Ratelimit-Reset": "",
			},
			refused: map[string]string{
				"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "100ms", "X-Ratelimit-Reset": "0.1",
			},
		},
		{
			name:    "anthropic",
			headers: conformance.HeaderAnthropic,
			ok: map[string]string{
				"Anthropic-Ratelimit-Requests-Limit": "10", "Anthropic-Ratelimit-Requests-Remaining": "0",
				"Anthropic-Ratelimit-Requests-Reset": "2000-01-01T00:00:01.000Z",
				"Anthropic-Ratelimit-Tokens-Limit":   "100", "Anthropic-Ratelimit-Tokens-Remaining": "80",
				"Anthropic-Ratelimit-Tokens-Reset": "2000-01-01T00:00:00.200Z",
			},
			refused: map[string]string{
				"Anthropic-Ratelimit-Requests-Remaining": "0",
				"Anthropic-Ratelimit-Requests-Reset":     "2000-01-01T00:00:00.100Z",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := srvChatLimit(conformance.Limit{RPM: 600, TPM: 6000})
				cfg.Headers = tt.headers
				srv := conformance.NewServer(cfg)
				var r srvReply
				for range 10 {
					r = srvChat(t, srv, "k")
					require.Equal(t, http.StatusOK, r.status)
				}
				for k, v := range tt.ok {
					assert.Equal(t, v, r.header.Get(k), "200 %s", k)
				}
				r = srvChat(t, srv, "k")
				require.Equal(t, http.StatusTooManyRequests, r.status)
				for k, v := range tt.refused {
					assert.Equal(t, v, r.header.Get(k), "429 %s", k)
				}
				// Whatever the form, steady's reader finds the same wait.
				sig := transport.ParseSignals(r.header, time.Now())
				want := 100 * time.Millisecond
				if tt.headers&conformance.HeaderRetryAfter != 0 {
					want = time.Second
				}
				assert.Equal(t, want, sig.ServerWait(r.status))
			})
		})
	}
}
