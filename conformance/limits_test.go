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

// srvAt sends the standard chat request at since start, sleeping until
// then.
func srvAt(t *testing.T, srv *conformance.Server, start time.Time, since time.Duration) srvReply {
	t.Helper()
	time.Sleep(time.Until(start.Add(since)))
	return srvChat(t, srv, "k")
}

func TestLimitBucketBurst(t *testing.T) {
	for _, tt := range []struct {
		burst    float64
		accepted int
		reset    string // of the first refusal
	}{
		{burst: 0, accepted: 10, reset: "0.1"}, // one second of 600 RPM
		{burst: 1, accepted: 1, reset: "0.1"},
		{burst: 3, accepted: 3, reset: "0.1"},
		{burst: 25, accepted: 25, reset: "0.1"},
		{burst: 2.5, accepted: 2, reset: "0.05"}, // half a request left
	} {
		t.Run(fmt.Sprint(tt.burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 600, Algorithm: conformance.TokenBucket, Burst: tt.burst}))
				ok := 0
				var first srvReply
				for range 30 {
					if r := srvChat(t, srv, "k"); r.status == http.StatusOK {
						ok++
					} else if first.status == 0 {
						first = r
					}
				}
				assert.Equal(t, tt.accepted, ok)
				require.Equal(t, http.StatusTooManyRequests, first.status)
				assert.Equal(t, tt.reset, first.header.Get("X-Ratelimit-Reset"))
			})
		})
	}
}

// nginx's limit_req with no burst: any two requests closer than 1/rate are
// not both accepted, the clock is read in whole milliseconds, and a
// refused request changes nothing.
func TestLimitLeakyBucket(t *testing.T) {
	noBurst := func(rpm float64) conformance.Config {
		return srvChatLimit(conformance.Limit{RPM: rpm, Algorithm: conformance.LeakyBucket, Burst: 1})
	}
	t.Run("10 r/s", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			srv := conformance.NewServer(noBurst(600))
			assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 0).status)
			r := srvAt(t, srv, start, 50*time.Millisecond)
			require.Equal(t, http.StatusTooManyRequests, r.status)
			assert.Equal(t, "0.05", r.header.Get("X-Ratelimit-Reset"))
			assert.Equal(t, http.StatusTooManyRequests, srvAt(t, srv, start, 99999*time.Microsecond).status)
			assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 100*time.Millisecond).status)
		})
	})
	t.Run("whole milliseconds", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			srv := conformance.NewServer(noBurst(600))
			exact := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 600, Algorithm: conformance.TokenBucket, Burst: 1}))
			time.Sleep(900 * time.Microsecond)
			require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
			require.Equal(t, http.StatusOK, srvChat(t, exact, "k").status)
			time.Sleep(time.Until(start.Add(100 * time.Millisecond)))
			assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "99.1 ms later, but 100 of nginx's milliseconds")
			assert.Equal(t, http.StatusTooManyRequests, srvChat(t, exact, "k").status, "an exact clock says 99.1 ms")
		})
	})
	t.Run("3 r/s: 334 ms apart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			srv := conformance.NewServer(noBurst(180))
			assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 0).status)
			assert.Equal(t, http.StatusTooManyRequests, srvAt(t, srv, start, 333*time.Millisecond).status, "3 × 333 is 999 thousandths")
			assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 334*time.Millisecond).status)
		})
	})
	t.Run("burst=10 nodelay, hammered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 600, Algorithm: conformance.LeakyBucket, Burst: 11}))
			for i := range 11 {
				require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "request %d of the burst", i)
			}
			for range 1000 { // a request every millisecond for a second
				time.Sleep(time.Millisecond)
				srvChat(t, srv, "k")
			}
			assert.Equal(t, 11+10, srv.Stats().OK, "the burst, then one every 100 ms: the refused ones cost nothing")
		})
	})
}

func TestLimitSlidingLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		// 5 per rolling 10 s.
		cfg := srvChatLimit(conformance.Limit{RPM: 30, Algorithm: conformance.SlidingLog, Window: 10 * time.Second})
		cfg.Headers = conformance.HeaderEveryAnswer
		srv := conformance.NewServer(cfg)
		var r srvReply
		for i := range 5 {
			r = srvAt(t, srv, start, time.Duration(i)*time.Second)
			require.Equal(t, http.StatusOK, r.status, "request %d", i)
		}
		assert.Equal(t, "5", r.header.Get("X-Ratelimit-Limit"))
		assert.Equal(t, "0", r.header.Get("X-Ratelimit-Remaining"))
		assert.Equal(t, "10", r.header.Get("X-Ratelimit-Reset"), "until the last request leaves the window")
		r = srvAt(t, srv, start, 5*time.Second)
		require.Equal(t, http.StatusTooManyRequests, r.status)
		assert.Equal(t, "5", r.header.Get("X-Ratelimit-Reset"), "until the first leaves, at 10 s")
		r = srvAt(t, srv, start, 10*time.Second)
		require.Equal(t, http.StatusOK, r.status, "the first is forgotten")
		assert.Equal(t, "0", r.header.Get("X-Ratelimit-Remaining"))
		r = srvAt(t, srv, start, 10500*time.Millisecond)
		require.Equal(t, http.StatusTooManyRequests, r.status, "a fixed window would have reset")
		assert.Equal(t, "0.5", r.header.Get("X-Ratelimit-Reset"))
		assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 11*time.Second).status)
	})
}

func TestLimitFixedWindows(t *testing.T) {
	// 10 per 10 s window.
	lim := conformance.Limit{RPM: 60, Algorithm: conformance.FixedWindow, Window: 10 * time.Second}
	t.Run("on the clock", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			srv := conformance.NewServer(srvChatLimit(lim))
			time.Sleep(3 * time.Second)
			for i := range 10 {
				require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "request %d", i)
			}
			r := srvChat(t, srv, "k")
			require.Equal(t, http.StatusTooManyRequests, r.status)
			assert.Equal(t, "7", r.header.Get("X-Ratelimit-Reset"), "the window [0, 10 s) ends at 10 s")
			assert.Equal(t, http.StatusOK, srvAt(t, srv, start, 10*time.Second).status)
		})
	})
	t.Run("from the first request", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			from := lim
			from.FromFirstRequest = true
			cfg := srvChatLimit(from)
			cfg.Headers = conformance.HeaderEveryAnswer
			srv := conformance.NewServer(cfg)
			time.Sleep(3 * time.Second)
			for i := range 10 {
				require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "request %d", i)
			}
			r := srvChat(t, srv, "k")
			require.Equal(t, http.StatusTooManyRequests, r.status)
			assert.Equal(t, "10", r.header.Get("X-Ratelimit-Reset"), "the window opened at 3 s")
			assert.Equal(t, http.StatusTooManyRequests, srvAt(t, srv, start, 12999*time.Millisecond).status)
			r = srvAt(t, srv, start, 13*time.Second)
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "9", r.header.Get("X-Ratelimit-Remaining"))
			assert.Equal(t, "10", r.header.Get("X-Ratelimit-Reset"), "a window opened by this request")
			r = srvAt(t, srv, start, 30*time.Second)
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "10", r.header.Get("X-Ratelimit-Reset"), "after a quiet spell, the next request opens the next window")
		})
	})
}

// A token limit stands beside the request limit in every algorithm.
func TestLimitTokensEveryAlgorithm(t *testing.T) {
	// "hello" is 2 tokens; with max_tokens 6, 8. 600 TPM: 10 a second,
	// 100 per 10 s window.
	body := `{"model":"` + srvChatModel + `","messages":[{"role":"user","content":"hello"}],"max_tokens":6}`
	for _, tt := range []struct {
		name     string
		limit    conformance.Limit
		accepted int
		reset    string
	}{
		{"bucket of 10 tokens", conformance.Limit{Algorithm: conformance.TokenBucket}, 1, "0.6"},
		// The first request is nginx's free one; the second fills the
		// 9 tokens of burst and one more.
		{"nginx, burst of 9 tokens", conformance.Limit{Algorithm: conformance.LeakyBucket}, 2, "0.7"},
		{"sliding 10 s", conformance.Limit{Algorithm: conformance.SlidingLog, Window: 10 * time.Second}, 12, "10"},
		{"fixed 10 s", conformance.Limit{Algorithm: conformance.FixedWindow, Window: 10 * time.Second, FromFirstRequest: true}, 12, "10"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lim := tt.limit
				lim.RPM, lim.TPM = 6000, 600
				cfg := srvChatLimit(lim)
				cfg.Headers = conformance.HeaderEveryAnswer
				srv := conformance.NewServer(cfg)
				ok := 0
				var r srvReply
				for r = srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body); r.status == http.StatusOK; ok++ {
					r = srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body)
				}
				assert.Equal(t, tt.accepted, ok)
				require.Equal(t, http.StatusTooManyRequests, r.status)
				assert.Equal(t, conformance.ErrorTokenLimited, srvErrorType(t, r.body))
				assert.Equal(t, tt.reset, r.header.Get("X-Ratelimit-Reset"))
				assert.NotEqual(t, "0", r.header.Get("X-Ratelimit-Remaining"), "requests are left: the tokens bind")
				wait := transport.ParseReset(r.header.Get("X-Ratelimit-Reset"), time.Now())
				time.Sleep(wait)
				assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body).status, "after %v", wait)
			})
		})
	}
}

// Averaged over the minutes in use, Together's dynamic limit grows within
// minutes of a key's first use; over the past hour, it stays at its base
// for half an hour.
func TestLimitDynamicSpans(t *testing.T) {
	perMinute := func(t *testing.T, span conformance.Span) []int {
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{Dynamic: true, Base: 60, Cap: 600, Span: span}))
		counts := make([]int, 15)
		for m := range counts { // 20 a second, more than the cap
			for range 1200 {
				if srvChat(t, srv, "k").status == http.StatusOK {
					counts[m]++
				}
				time.Sleep(time.Second / 20)
			}
		}
		return counts
	}
	synctest.Test(t, func(t *testing.T) {
		hour, inUse := perMinute(t, conformance.SpanHour), perMinute(t, conformance.SpanInUse)
		t.Logf("accepted per minute over the past hour: %v; over the minutes in use: %v", hour, inUse)
		for m := range hour {
			assert.InDelta(t, 60, hour[m], 2, "minute %d: the base", m)
		}
		assert.Greater(t, inUse[0], 75, "past the base within the first minute")
		assert.Greater(t, inUse[3], 250)
		assert.InDelta(t, 600, inUse[14], 12, "at the cap")
		for m, n := range inUse {
			assert.LessOrEqual(t, n, 600+10, "minute %d above the cap", m)
		}
	})
}

// Waiting exactly the reset a 429 names is always enough, whatever the
// algorithm: the greedy client of each is accepted at the first try after
// its wait.
func TestLimitResetIsEnoughEveryAlgorithm(t *testing.T) {
	for _, lim := range []conformance.Limit{
		{RPM: 600, Algorithm: conformance.TokenBucket, Burst: 1},
		{RPM: 420, Algorithm: conformance.LeakyBucket, Burst: 1},
		{RPM: 600, Algorithm: conformance.LeakyBucket, Burst: 5},
		{RPM: 70, Algorithm: conformance.LeakyBucket},
		{RPM: 60, Algorithm: conformance.SlidingLog, Window: 10 * time.Second},
		{RPM: 60, Algorithm: conformance.FixedWindow, Window: 7 * time.Second},
		{RPM: 60, Algorithm: conformance.FixedWindow, Window: 7 * time.Second, FromFirstRequest: true},
		{RPM: 600, TPM: 1000, Algorithm: conformance.SlidingLog, Window: 3 * time.Second},
		// Not a dynamic limit: its rate can fall during the wait (the
		// minutes in use grow, old minutes leave the hour), and the reset
		// told at the 429 is then a little short.
	} {
		t.Run(fmt.Sprintf("%v %v %v", lim.Algorithm, lim.RPM, lim.Burst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(srvChatLimit(lim))
				accepted, refused := 0, 0
				for accepted < 100 {
					r := srvChat(t, srv, "k")
					if r.status == http.StatusOK {
						accepted++
						continue
					}
					require.Equal(t, http.StatusTooManyRequests, r.status)
					refused++
					wait := transport.ParseReset(r.header.Get("X-Ratelimit-Reset"), time.Now())
					require.Positive(t, wait)
					time.Sleep(wait)
					require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "after waiting %v", wait)
					accepted++
				}
				assert.Positive(t, refused)
			})
		})
	}
}

// The header dialects of express-rate-limit, as its source/headers.ts
// writes them, on a fixed 10 s window of 100 started by the first request.
func TestLimitHeaderDialectsExpress(t *testing.T) {
	const pk = "ODI1NGMzMjlhOTI4" // express-rate-limit's partition key of "k": base64 of sha256's first 12 hex digits
	tests := []struct {
		name    string
		headers conformance.Headers
		tpm     float64
		ok      map[string]string // on the first answer, at 2 s; "" means absent
		refused map[string]string // on the 101st, at 4.5 s
	}{
		{
			name:    "none",
			headers: conformance.HeaderNoReset,
			ok:      map[string]string{"X-Ratelimit-Reset": "", "Retry-After": "", "Ratelimit": ""},
			refused: map[string]string{"X-Ratelimit-Reset": "", "Retry-After": "", "Ratelimit": "", "Ratelimit-Policy": ""},
		},
		{
			name:    "Retry-After only",
			headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter,
			ok:      map[string]string{"Retry-After": ""},
			refused: map[string]string{"Retry-After": "8", "X-Ratelimit-Reset": ""},
		},
		{
			name:    "legacy",
			headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter | conformance.HeaderLegacy,
			ok: map[string]string{
				"X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "99", "X-Ratelimit-Reset": "946684812",
				"Date": "Sat, 01 Jan 2000 00:00:02 GMT",
			},
			refused: map[string]string{
				"X-Ratelimit-Limit": "100", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "946684812",
				"Retry-After": "8", "Date": "Sat, 01 Jan 2000 00:00:04 GMT",
			},
		},
		{
			name:    "draft-6",
			headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter | conformance.HeaderDraft6,
			ok: map[string]string{
				"Ratelimit-Policy": "100;w=10", "Ratelimit-Limit": "100", "Ratelimit-Remaining": "99", "Ratelimit-Reset": "10",
			},
			refused: map[string]string{
				"Ratelimit-Policy": "100;w=10", "Ratelimit-Limit": "100", "Ratelimit-Remaining": "0", "Ratelimit-Reset": "8",
				"Retry-After": "8",
			},
		},
		{
			name:    "draft-7",
			headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter | conformance.HeaderDraft7,
			ok:      map[string]string{"Ratelimit-Policy": "100;w=10", "Ratelimit": "limit=100, remaining=99, reset=10"},
			refused: map[string]string{"Ratelimit-Policy": "100;w=10", "Ratelimit": "limit=100, remaining=0, reset=8", "Retry-After": "8"},
		},
		{
			name:    "draft-8",
			headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter | conformance.HeaderDraft8,
			ok: map[string]string{
				"Ratelimit-Policy": `"100-in-10sec"; q=100; w=10; pk=:` + pk + `:`,
				"Ratelimit":        `"100-in-10sec"; r=99; t=10`,
			},
			refused: map[string]string{
				"Ratelimit-Policy": `"100-in-10sec"; q=100; w=10; pk=:` + pk + `:`,
				"Ratelimit":        `"100-in-10sec"; r=0; t=8`,
				"Retry-After":      "8",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				cfg := srvChatLimit(conformance.Limit{RPM: 600, Algorithm: conformance.FixedWindow, Window: 10 * time.Second, FromFirstRequest: true})
				cfg.Headers = tt.headers
				srv := conformance.NewServer(cfg)
				r := srvAt(t, srv, start, 2*time.Second)
				require.Equal(t, http.StatusOK, r.status)
				for k, v := range tt.ok {
					assert.Equal(t, v, r.header.Get(k), "200 %s", k)
				}
				time.Sleep(time.Until(start.Add(4500 * time.Millisecond)))
				for range 99 {
					require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
				}
				r = srvChat(t, srv, "k")
				require.Equal(t, http.StatusTooManyRequests, r.status)
				for k, v := range tt.refused {
					assert.Equal(t, v, r.header.Get(k), "429 %s", k)
				}
			})
		})
	}
}

// The IETF forms describe buckets too: a policy of the rate over the whole
// seconds the bucket takes to fill; draft-8 lists a token limit as a
// second policy.
func TestLimitHeaderDialectsOtherAlgorithms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := srvChatLimit(conformance.Limit{RPM: 600, Algorithm: conformance.LeakyBucket, Burst: 1})
		cfg.Headers = conformance.HeaderDraft7
		r := srvChat(t, conformance.NewServer(cfg), "k")
		assert.Equal(t, "10;w=1", r.header.Get("Ratelimit-Policy"), "nginx at 10 r/s, no burst")
		assert.Equal(t, "limit=10, remaining=0, reset=1", r.header.Get("Ratelimit"))

		cfg = srvChatLimit(conformance.Limit{RPM: 30, TPM: 6000, Algorithm: conformance.TokenBucket})
		cfg.Headers = conformance.HeaderDraft8
		r = srvChat(t, conformance.NewServer(cfg), "key")
		assert.Equal(t, []string{
			`"1-in-2sec"; q=1; w=2; pk=:MmM3MGUxMmI3YTA2:`,
			`"100-tokens-in-1sec"; q=100; w=1; pk=:MmM3MGUxMmI3YTA2:`,
		}, r.header.Values("Ratelimit-Policy"), "half a request a second: 1 in 2 s")
		assert.Equal(t, []string{`"1-in-2sec"; r=0; t=2`, `"100-tokens-in-1sec"; r=98; t=1`}, r.header.Values("Ratelimit"))

		cfg = srvChatLimit(conformance.Limit{RPM: 60, Algorithm: conformance.SlidingLog, Window: 90 * time.Second})
		cfg.Headers = conformance.HeaderDraft8 | conformance.HeaderOpenAI | conformance.HeaderAnthropic
		r = srvChat(t, conformance.NewServer(cfg), "key")
		assert.Equal(t, `"90-in-1.5min"; r=89; t=90`, r.header.Get("Ratelimit"))
		assert.Equal(t, "89", r.header.Get("X-Ratelimit-Remaining-Requests"))
		assert.Equal(t, "1m30s", r.header.Get("X-Ratelimit-Reset-Requests"))
		assert.Equal(t, "2000-01-01T00:01:30.000Z", r.header.Get("Anthropic-Ratelimit-Requests-Reset"))
	})
}

// The patterns nginx 1.22.1's limit_req let through on loopback, with
// `limit_req_zone $binary_remote_addr zone=z:1m rate=10r/s` (3r/s for the
// last) and `limit_req_status 429`, serving a static file: a request every
// 30 ms with no burst, every 1 ms with burst=5 nodelay, every 112 ms at
// 3 r/s. The model lets the same requests through.
func TestLimitLeakyBucketAsNginx(t *testing.T) {
	for _, tt := range []struct {
		name     string
		limit    conformance.Limit
		every    time.Duration
		n        int
		accepted []int
	}{
		{"10r/s", conformance.Limit{RPM: 600, Algorithm: conformance.LeakyBucket, Burst: 1}, 30 * time.Millisecond, 40,
			[]int{0, 4, 8, 12, 16, 20, 24, 28, 32, 36}},
		{"10r/s burst=5 nodelay", conformance.Limit{RPM: 600, Algorithm: conformance.LeakyBucket, Burst: 6}, time.Millisecond, 300,
			[]int{0, 1, 2, 3, 4, 5, 100, 200}},
		{"3r/s", conformance.Limit{RPM: 180, Algorithm: conformance.LeakyBucket, Burst: 1}, 112 * time.Millisecond, 30,
			[]int{0, 3, 6, 9, 12, 15, 18, 21, 24, 27}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				srv := conformance.NewServer(srvChatLimit(tt.limit))
				var got []int
				for i := range tt.n {
					if srvAt(t, srv, start, time.Duration(i)*tt.every).status == http.StatusOK {
						got = append(got, i)
					}
				}
				assert.Equal(t, tt.accepted, got)
			})
		})
	}
}

// A rate so low that its wait overflows a time.Duration (one request in
// 1,900 years) still refuses the second request, and says to come back in
// a century, the longest wait the server states.
func TestLimitTinyRate(t *testing.T) {
	for _, lim := range []conformance.Limit{
		{RPM: 1e-9},
		{RPM: 6000, TPM: 1e-9, TokenBurst: 2}, // a request of 2 tokens empties it
	} {
		srv := conformance.NewServer(conformance.Config{
			Limits:  map[string]conformance.Limit{conformance.Chat: lim},
			Headers: conformance.HeaderEveryAnswer | conformance.HeaderRetryAfter | conformance.HeaderOpenAI | conformance.HeaderDraft7,
		})
		first := srvChat(t, srv, "k")
		require.Equal(t, http.StatusOK, first.status, "%+v", lim)
		for range 2 {
			r := srvChat(t, srv, "k")
			assert.Equal(t, http.StatusTooManyRequests, r.status, "%+v", lim)
			assert.Equal(t, "3153600000", r.header.Get("Retry-After"), "%+v", lim)
			assert.Equal(t, "3153600000", r.header.Get("X-Ratelimit-Reset"), "%+v", lim)
		}
	}
}
