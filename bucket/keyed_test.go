package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// modelServer answers every request at once with answer's status, headers
// and body, and records when each model's requests arrived.
type modelServer struct {
	mu     sync.Mutex
	start  time.Time
	at     map[string][]time.Duration
	answer func(model string, n int) (int, http.Header, string)
}

func newModelServer(answer func(model string, n int) (int, http.Header, string)) *modelServer {
	return &modelServer{start: time.Now(), at: map[string][]time.Duration{}, answer: answer}
}

func (s *modelServer) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	_ = req.Body.Close()
	model, _ := transport.FindModel(b)
	s.mu.Lock()
	s.at[model] = append(s.at[model], time.Since(s.start))
	n := len(s.at[model])
	s.mu.Unlock()
	status, h, body := http.StatusOK, http.Header{}, "{}"
	if s.answer != nil {
		status, h, body = s.answer(model, n)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func (s *modelServer) arrivals(model string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.at[model]...)
}

func chat(t *testing.T, rt http.RoundTripper, model string, maxTokens int) {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"max_tokens":%d}`, model, maxTokens)
	chatWithin(t, context.Background(), rt, body, "")
}

// chatWithin sends a chat request of body with ctx through rt, and reads
// its answer; msg says why it must not fail.
func chatWithin(t *testing.T, ctx context.Context, rt http.RoundTripper, body, msg string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err, msg)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// Each model has a limiter of its own: two models at 60 a minute each
// send ten requests in nine seconds, side by side.
func TestKeyedLimitsEachModelApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(nil)
		rt := bucket.Keyed(bucket.PerMinute(60))(srv)
		var wg sync.WaitGroup
		for _, m := range []string{"a", "b"} {
			wg.Go(func() {
				for range 10 {
					chat(t, rt, m, 1)
				}
			})
		}
		wg.Wait()
		for _, m := range []string{"a", "b"} {
			at := srv.arrivals(m)
			require.Len(t, at, 10)
			assert.Equal(t, 9*time.Second, at[9], "model %s: one a second, its first at once", m)
		}
	})
}

// Past WithMaxKeys, new keys share one limiter.
func TestKeyedBoundsItsKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(nil)
		rt := bucket.Keyed(bucket.PerMinute(60), bucket.WithMaxKeys(1))(srv)
		chat(t, rt, "kept", 1)
		var wg sync.WaitGroup
		for _, m := range []string{"x", "y"} {
			wg.Go(func() {
				for range 5 {
					chat(t, rt, m, 1)
				}
			})
		}
		wg.Wait()
		last := max(srv.arrivals("x")[4], srv.arrivals("y")[4])
		assert.Equal(t, 9*time.Second, last, "x and y share one limiter: ten requests at one a second")
		assert.Equal(t, 0*time.Second, srv.arrivals("x")[0]+srv.arrivals("y")[0]-max(srv.arrivals("x")[0], srv.arrivals("y")[0]))
	})
}

// Events name the limiter's key and the model; token limiters give their
// limit's name as the Reason.
func TestKeyedEventsNameTheKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(model string, n int) (int, http.Header, string) {
			if n == 1 {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"1"}}, "{}"
			}
			return http.StatusOK, nil, "{}"
		})
		var events []transport.Event
		rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithKeyStore(newKeyStore(), "chat:"),
			bucket.WithLimitOptions(bucket.WithEvents(func(e transport.Event) { events = append(events, e) })))(srv)
		chat(t, rt, "m", 1)
		require.NotEmpty(t, events)
		paused := events[0]
		assert.Equal(t, transport.EventPaused, paused.Kind)
		assert.Equal(t, "chat:m", paused.Key, "the store key")
		assert.Equal(t, "m", paused.Model)
		assert.Equal(t, "requests", paused.Reason)
	})
}

// A rate left unknown is learnt from the server's stated limit: here 120
// requests a minute, two a second, after a first answer.
func TestKeyedLearnsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"120"}}, "{}"
		})
		var rates []float64
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), rateChanges(&rates))(srv)
		for range 11 {
			chat(t, rt, "m", 1)
		}
		assert.Equal(t, []float64{2}, rates, "the rate learnt is reported, in requests a second")
		at := srv.arrivals("m")
		assert.Equal(t, 5*time.Second, at[10]-at[0], "one every half second from the first, which the learnt bucket counts as its own")
	})
}

// A first answer that is a 429 stating the limit is one 429 to the hook,
// not two (the limiter that sent it and the one it taught each told it),
// and the rate reported last is the one the limiter then keeps: the
// limit learnt, lowered by that 429.
func TestKeyedLearningFromA429ReportsItOnceAndTheRateKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(_ string, n int) (int, http.Header, string) {
			if n == 1 {
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Limit-Requests": {"120"}, "Retry-After": {"1"}}, "{}"
			}
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"120"}}, "{}"
		})
		var paused int
		var rates []float64
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), bucket.WithoutTokens(),
			bucket.WithLimitOptions(bucket.WithEvents(func(e transport.Event) {
				switch e.Kind {
				case transport.EventPaused:
					paused++
				case transport.EventRateChanged:
					rates = append(rates, e.Rate)
				}
			})))(srv)
		chat(t, rt, "m", 1)
		assert.Equal(t, 1, paused, "one 429 answered")
		require.NotEmpty(t, rates)
		assert.Contains(t, rates, 2.0, "the limit learnt, 120 a minute, is reported")
		assert.Less(t, rates[len(rates)-1], 2.0, "the rate set last is the one lowered by the 429")
	})
}

// A token limit the server states opens the token limiter; the usage each
// answer reports corrects its charge, so a request allowed 1,000 tokens
// that uses 20 costs 20: at 1,200 tokens a minute (20 a second), one a
// second, where max_tokens alone would allow one every 50 seconds.
func TestKeyedTokensCorrectedByUsage(t *testing.T) {
	for _, usage := range []bool{true, false} {
		t.Run(fmt.Sprintf("usage %v", usage), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newModelServer(func(string, int) (int, http.Header, string) {
					body := `{"choices":[]}`
					if usage {
						body = `{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":19}}`
					}
					return http.StatusOK, http.Header{"X-Ratelimit-Limit-Tokens": {"1200"}}, body
				})
				rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(srv)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				chatUntil(t, ctx, rt, `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`)
				n := len(srv.arrivals("m"))
				t.Logf("%d requests in 20 s", n)
				if usage {
					assert.GreaterOrEqual(t, n, 18, "about one a second, paced by what was used")
				} else {
					assert.LessOrEqual(t, n, 2, "the first answer opens the limiter; each request then waits 50 s")
				}
			})
		})
	}
}

// Anthropic's input and output token limits have limiters of their own,
// each learning from its own headers, however their prefix is spelt.
func TestKeyedInputAndOutputLimits(t *testing.T) {
	for _, prefix := range []string{"Anthropic-Ratelimit-", "anthropic-ratelimit-"} {
		t.Run(prefix, func(t *testing.T) { testInputAndOutputLimits(t, prefix) })
	}
}

func testInputAndOutputLimits(t *testing.T, prefix string) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{
				"Anthropic-Ratelimit-Input-Tokens-Limit":  {"600000"}, // 10,000 a second: never binds
				"Anthropic-Ratelimit-Output-Tokens-Limit": {"600"},    // 10 a second
			}, `{"usage":{"input_tokens":1,"output_tokens":10}}`
		})
		var events []transport.Event
		rt := bucket.Keyed(bucket.PerMinute(6000),
			bucket.WithLimitOptions(bucket.WithEvents(func(e transport.Event) { events = append(events, e) })),
			bucket.WithTokenLimits(
				bucket.TokenLimit{Name: "input tokens", Counts: bucket.InputTokens, Header: prefix + "Input-Tokens-"},
				bucket.TokenLimit{Name: "output tokens", Counts: bucket.OutputTokens, Header: prefix + "Output-Tokens-"},
			))(srv)
		start := time.Now()
		for range 21 {
			chat(t, rt, "m", 10)
		}
		elapsed := time.Since(start)
		assert.InDelta(t, 20, elapsed.Seconds(), 1.5, "one a second: ten output tokens each, at ten a second")
		seen := map[string]bool{}
		for _, e := range events {
			seen[e.Reason] = true
		}
		assert.True(t, seen["output tokens"], "the output limiter waits")
		assert.False(t, seen["input tokens"], "the input limiter never binds")
	})
}

// Keyed keeps the RoundTripper contract.
func TestKeyedKeepsTheContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return bucket.Keyed(bucket.PerMinute(600))(next)
	})
}

// keyStore is a Store that keeps nothing but the keys asked for.
type keyStore struct {
	mu   sync.Mutex
	keys map[string]bool
}

func newKeyStore() *keyStore { return &keyStore{keys: map[string]bool{}} }

func (s *keyStore) note(key string) {
	s.mu.Lock()
	s.keys[key] = true
	s.mu.Unlock()
}

func (s *keyStore) Reserve(_ context.Context, key string, n float64, _ time.Duration, sh bucket.Shape) (bucket.Reservation, error) {
	s.note(key)
	return bucket.Reservation{OK: true, Rate: sh.PerSecond, Tokens: n}, nil
}
func (s *keyStore) Cancel(context.Context, string, bucket.Reservation) {}
func (s *keyStore) Pause(_ context.Context, key string, _ time.Time, _ bucket.Shape) {
	s.note(key)
}
func (s *keyStore) SetRate(_ context.Context, key string, _ bucket.Shape) { s.note(key) }

// A 429 whose body says tokens were refused, with an absurd Retry-After,
// opens the token limiter at no rate a day's wait would measure: the
// server is asked again after the longest pause, not a day later.
func TestKeyedTokenLimitFromAnAbsurdRetryAfterDoesNotStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(_ string, n int) (int, http.Header, string) {
			if n == 1 {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"1e12"}},
					`{"error":{"type":"tokens","message":"Rate limit reached on tokens per min"}}`
			}
			return http.StatusOK, http.Header{}, `{}`
		})
		rt := bucket.Keyed(bucket.PerMinute(600))(srv)
		chat(t, rt, "m", 100)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		for range 3 {
			chatWithin(t, ctx, rt, `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":100}`, "the key is not held for a day")
		}
	})
}

// A server stating a token limit under one token states none: the token
// limiter stays idle rather than charging a request hours of it.
func TestKeyedTokenLimitUnderOneTokenIsNone(t *testing.T) {
	for _, c := range []struct {
		header string
		limit  bucket.TokenLimit
	}{
		{"X-Ratelimit-Limit-Tokens", bucket.TokenLimit{Name: "tokens"}},
		{"Anthropic-Ratelimit-Input-Tokens-Limit", bucket.TokenLimit{Name: "input tokens", Counts: bucket.InputTokens, Header: "Anthropic-Ratelimit-Input-Tokens-"}},
	} {
		t.Run(c.header, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newModelServer(func(string, int) (int, http.Header, string) {
					return http.StatusOK, http.Header{c.header: {"0.001"}}, `{}`
				})
				rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(c.limit))(srv)
				chat(t, rt, "m", 100)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				for range 3 {
					chatWithin(t, ctx, rt, `{"model":"m","messages":[{"role":"user","content":"hi there, a prompt of a few tokens"}],"max_tokens":100}`,
						"no token limit holds the key")
				}
			})
		})
	}
}

// A learnt request limit under one request is none: the key starts slow,
// as with a limit not stated, rather than one request in days.
func TestKeyedLearntLimitUnderOneIsNone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"0.001"}}, `{}`
		})
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), bucket.WithoutTokens())(srv)
		chat(t, rt, "m", 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for range 3 {
			chatWithin(t, ctx, rt, `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`, "the key is not held for days")
		}
	})
}

// A request whose estimate is more than the key's whole token limit (a
// garbage or mistaken max_tokens) is charged at most the limit: the server
// refuses it or serves it within a window, and the requests behind it are
// not held for the hours its estimate would take to refill.
func TestKeyedARequestOverTheTokenLimitHoldsTheKeyOneWindowAtMost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Tokens": {"1000"}, "X-Ratelimit-Remaining-Tokens": {"1000"},
				"X-Ratelimit-Reset-Tokens": {"60s"}}, `{}`
		})
		rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(srv)
		chat(t, rt, "m", 10) // the first answer shows the limit: 1,000 tokens a minute
		start := time.Now()
		chat(t, rt, "m", 1e12) // max_tokens far over the limit (counted as at most math.MaxInt32)
		chat(t, rt, "m", 10)
		assert.LessOrEqual(t, time.Since(start), 2*time.Minute, "a request over the limit costs the key a window, not hours")
		assert.Len(t, srv.arrivals("m"), 3)
	})
}

// An answer that reports more usage than the key's whole token limit (a
// broken or hostile server) puts the key at most a window behind: the
// requests after it are not held for the years its count would take to
// refill.
func TestKeyedAnAbsurdUsageHoldsTheKeyOneWindowAtMost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(_ string, n int) (int, http.Header, string) {
			body := `{"usage":{"prompt_tokens":5,"completion_tokens":5,"total_tokens":10}}`
			if n == 2 {
				body = `{"usage":{"prompt_tokens":1000000000000000,"completion_tokens":5,"total_tokens":1000000000000005}}`
			}
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Tokens": {"1000"}, "X-Ratelimit-Reset-Tokens": {"60s"}}, body
		})
		rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(srv)
		chat(t, rt, "m", 10) // the first answer shows the limit: 1,000 tokens a minute
		start := time.Now()
		chat(t, rt, "m", 10) // its answer says it used 10^15 tokens
		chat(t, rt, "m", 10)
		assert.LessOrEqual(t, time.Since(start), 2*time.Minute, "an absurd usage costs the key a window, not years")
		assert.Len(t, srv.arrivals("m"), 3)
	})
}

// The keys past WithMaxKeys share a limiter whose state a store keeps
// under a key of its own: not the key of requests that name no model,
// whose limiter is another.
func TestKeyedOverflowHasAStoreKeyOfItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newKeyStore()
		rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithMaxKeys(2), bucket.WithKeyStore(store, "chat:"))(newModelServer(nil))
		chat(t, rt, "a", 1)
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(`{"messages":[]}`))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req) // no model: the key ""
		require.NoError(t, err)
		_ = resp.Body.Close()
		chat(t, rt, "b", 1) // past the two keys
		store.mu.Lock()
		defer store.mu.Unlock()
		assert.Len(t, store.keys, 3, "a, the requests without a model, and the keys past the limit: %v", store.keys)
		assert.True(t, store.keys["chat:a"])
		assert.True(t, store.keys["chat:"])
	})
}

// A key named as Keyed names the keys past WithMaxKeys in a store is a key
// like any other: its limit is its own, not shared with those keys'. Side
// by side, the key and a key past the limit each send ten requests in nine
// seconds, at 60 a minute each, as two keys apart do.
func TestKeyedAKeyNamedLikeTheOverflowKeepsALimitOfItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const named = "(keys past WithMaxKeys)"
		store := newMemStore()
		srv := newModelServer(nil)
		var rec conformance.EventRecorder
		rt := bucket.Keyed(bucket.PerMinute(60), bucket.WithMaxKeys(1), bucket.WithKeyStore(store, "chat:"),
			bucket.WithLimitOptions(bucket.WithEvents(rec.Record)))(srv)
		chat(t, rt, named, 1) // the one key kept
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 9 {
				chat(t, rt, named, 1)
			}
		})
		wg.Go(func() {
			for range 10 {
				chat(t, rt, "past", 1) // past the one key
			}
		})
		wg.Wait()
		for _, m := range []string{named, "past"} {
			at := srv.arrivals(m)
			require.Len(t, at, 10)
			assert.Equal(t, 9*time.Second, at[9], "%s: one a second, its first at once", m)
		}
		store.mu.Lock()
		defer store.mu.Unlock()
		assert.Len(t, store.keys, 2, "the key and the keys past the limit are kept apart")
		keys := map[string]map[string]bool{} // the events' keys, by model
		for _, e := range rec.Events() {
			if keys[e.Model] == nil {
				keys[e.Model] = map[string]bool{}
			}
			keys[e.Model][e.Key] = true
		}
		assert.Equal(t, map[string]map[string]bool{
			named: {"chat:" + named + named: true},
			"":    {"chat:" + named: true},
		}, keys, "events tell the key from the keys past the limit, which name no model")
	})
}

// failOnce fails its first round trip with a transport error, then hands
// on to next.
type failOnce struct {
	n    int
	next http.RoundTripper
}

func (f *failOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	f.n++
	if f.n == 1 {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, errors.New("connection reset")
	}
	return f.next.RoundTrip(req)
}

// WithLearnedRate takes the rate from the first answer that states the
// limit: a first request that got no answer at all (a connection reset, a
// caller's cancel) hands the probe to the next, and learning goes on.
func TestKeyedLearnsTheRateAfterAFirstRequestThatFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"120"}}, "{}"
		})
		var rates []float64
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), rateChanges(&rates))(&failOnce{next: srv})
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`))
		require.NoError(t, err)
		_, err = rt.RoundTrip(req)
		require.Error(t, err, "the first request gets no answer")
		for range 11 {
			chat(t, rt, "m", 1)
		}
		at := srv.arrivals("m")
		require.Len(t, at, 11)
		assert.Equal(t, []float64{2}, rates, "the rate the first answer states is learnt")
		assert.GreaterOrEqual(t, at[10]-at[0], 5*time.Second, "two a second, as the server said")
	})
}

// With a shared store, the probe that teaches a key its rate was reserved
// in the store already (by the slow start's bucket, under the same store
// key): learning counts it, and does not reserve it again, which would
// hold the probe's answer until that reservation is due (here half a
// minute, at two requests a minute).
func TestKeyedWithAStoreReturnsTheProbesAnswerAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"2"}}, "{}"
		})
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), bucket.WithoutTokens(),
			bucket.WithKeyStore(newMemStore(), "chat:"))(srv)
		start := time.Now()
		chat(t, rt, "m", 1)
		assert.Zero(t, time.Since(start), "the first request's answer is returned as it comes")
		require.Len(t, srv.arrivals("m"), 1)
	})
}

// A server that states the period of its limit (Envoy's "10, 10;w=1",
// the IETF RateLimit-Policy's w) allows that limit per that period: here
// ten requests a second, which the key learns, not ten over the period
// WithLearnedRate configures (a minute).
func TestKeyedLearnsTheStatedPeriod(t *testing.T) {
	for _, h := range []http.Header{
		{"X-Ratelimit-Limit": {"10, 10;w=1"}},
		{"Ratelimit-Policy": {"10;w=1"}, "Ratelimit-Limit": {"10"}},
	} {
		t.Run(fmt.Sprint(h), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newModelServer(func(string, int) (int, http.Header, string) { return http.StatusOK, h, "{}" })
				var rates []float64
				rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), bucket.WithoutTokens(),
					rateChanges(&rates))(srv)
				start := time.Now()
				for range 31 {
					chat(t, rt, "m", 1)
				}
				assert.Equal(t, []float64{10}, rates, "ten a second, as the server states")
				assert.LessOrEqual(t, time.Since(start), 3*time.Second, "31 requests at ten a second")
			})
		})
	}
}

// A token limit stated with its window (the IETF RateLimit-Policy's w,
// here a second) is counted over that window, not over the TokenLimit's
// (a minute by default): requests that each may generate 1,000 tokens go
// about one a second under 1,200 a second, not one every 50 s.
func TestKeyedTokenLimitTakesTheStatedWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"Ratelimit-Policy": {`"tps";q=1200;qu="tokens";w=1`}}, `{"choices":[]}`
		})
		rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(srv)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		chatUntil(t, ctx, rt, `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`)
		n := len(srv.arrivals("m"))
		assert.GreaterOrEqual(t, n, 20, "1,200 tokens a second: a request of 1,000 about every 0.8 s")
		assert.LessOrEqual(t, n, 27, "no more than the limit allows")
	})
}

// chatUntil sends body through rt, again and again, each answer read
// whole, until ctx ends or a request fails.
func chatUntil(t *testing.T, ctx context.Context, rt http.RoundTripper, body string) {
	t.Helper()
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

// rateChanges has Keyed's limiters append to *rates each rate they set.
func rateChanges(rates *[]float64) bucket.KeyedOption {
	return bucket.WithLimitOptions(bucket.WithEvents(func(e transport.Event) {
		if e.Kind == transport.EventRateChanged {
			*rates = append(*rates, e.Rate)
		}
	}))
}

// A first answer that takes long (a long completion, a server that hangs)
// holds the requests behind it for the probe's wait at most: they are
// then sent at the slow start's rate, as an unknown rate's are, and the
// answer, when it comes, still teaches the rate.
func TestKeyedASlowFirstAnswerHoldsTheOthersNoLongerThanTheProbesWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newModelServer(func(string, int) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"120"}}, "{}"
		})
		first := true
		var mu sync.Mutex
		slow := transport.Func(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			wasFirst := first
			first = false
			mu.Unlock()
			if wasFirst {
				time.Sleep(2 * time.Minute) // a long completion
			}
			return srv.RoundTrip(req)
		})
		var rates []float64
		rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), rateChanges(&rates))(slow)
		start := time.Now()
		done := make(chan struct{})
		go func() {
			defer close(done)
			chat(t, rt, "m", 1)
		}()
		time.Sleep(time.Second)
		chat(t, rt, "m", 1)
		assert.Equal(t, bucket.ProbeWait, time.Since(start), "sent once the probe has been out for ProbeWait")
		<-done
		assert.Equal(t, 2*time.Minute, time.Since(start))
		assert.Equal(t, []float64{2}, rates, "the slow answer still teaches the rate")
	})
}

// A rate learnt from a window of a year (here one request a year) is no
// slower than the limiter's floor, one a minute by default or the one
// WithFloor sets: nothing a server states holds the key to a request a
// year.
func TestKeyedLearntRateIsNoSlowerThanTheFloor(t *testing.T) {
	for _, c := range []struct {
		opts  []bucket.LimitOption
		every time.Duration
	}{
		{nil, time.Minute},
		{[]bucket.LimitOption{bucket.WithFloor(bucket.PerSecond(1))}, time.Second},
	} {
		t.Run(c.every.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newModelServer(func(string, int) (int, http.Header, string) {
					return http.StatusOK, http.Header{"X-Ratelimit-Limit": {"1, 1;w=31536000"}}, "{}"
				})
				var rates []float64
				rt := bucket.Keyed(bucket.Rate{}, bucket.WithLearnedRate(time.Minute), bucket.WithoutTokens(),
					bucket.WithLimitOptions(c.opts...), rateChanges(&rates))(srv)
				for range 3 {
					chat(t, rt, "m", 1)
				}
				require.Len(t, rates, 1)
				assert.InDelta(t, 1/c.every.Seconds(), rates[0], 1e-9, "the floor, not one a year")
				at := srv.arrivals("m")
				assert.Equal(t, 2*c.every, at[2]-at[0], "one every %v from the first", c.every)
			})
		})
	}
}
