package openai_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake answers with answer and records every request it got.
type fake struct {
	mu     sync.Mutex
	start  time.Time
	got    []*http.Request
	at     []time.Duration
	answer func(n int, req *http.Request) (int, http.Header, string)
}

func (f *fake) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	f.mu.Lock()
	f.got = append(f.got, req)
	f.at = append(f.at, time.Since(f.start))
	n := len(f.got)
	f.mu.Unlock()
	status, h, body := http.StatusOK, http.Header{}, `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`
	if f.answer != nil {
		status, h, body = f.answer(n, req)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func chat(t *testing.T, rt http.RoundTripper, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url,
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	return resp
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

func TestTheKeyGoesToTheAPIOnly(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "sk-env")
	f := &fake{start: time.Now()}
	rt := openai.NewTransport(f, openai.WithBaseURL("http://sim.test/v1"))
	drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
	drain(chat(t, rt, "https://elsewhere.test/v1/chat/completions"))
	require.Len(t, f.got, 2)
	assert.Equal(t, "sim.test", f.got[0].URL.Host, "OpenAI's root is moved to the one given")
	assert.Equal(t, "/v1/chat/completions", f.got[0].URL.Path)
	assert.Equal(t, "Bearer sk-env", f.got[0].Header.Get("Authorization"), "the key from OPENAI_API_KEY")
	assert.Empty(t, f.got[1].Header.Get("Authorization"), "no key for another host")
}

// insufficient_quota is a 429 that no wait cures: returned at once, never
// retried, named by ErrQuotaExceeded and not by ErrRateLimited. A 429 of
// the rate limit, beside it, is retried.
func TestInsufficientQuotaIsReturnedAtOnce(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	const limited = `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM)","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
	for _, tt := range []struct {
		name     string
		body     string
		arrivals int
		kind     error
	}{
		{"insufficient_quota", quota, 1, openai.ErrQuotaExceeded},
		{"rate_limit_exceeded", limited, 2, openai.ErrRateLimited},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fake{start: time.Now(), answer: func(n int, _ *http.Request) (int, http.Header, string) {
					if n == 1 || tt.kind == openai.ErrQuotaExceeded {
						return http.StatusTooManyRequests, http.Header{"Content-Type": {"application/json"}}, tt.body
					}
					return http.StatusOK, http.Header{}, `{}`
				}}
				rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"))
				start := time.Now()
				resp := chat(t, rt, openai.DefaultBaseURL+"/chat/completions")
				defer drain(resp)
				assert.Len(t, f.got, tt.arrivals)
				if tt.kind != openai.ErrQuotaExceeded {
					assert.Equal(t, http.StatusOK, resp.StatusCode)
					return
				}
				assert.Zero(t, time.Since(start), "at once")
				err := openai.CheckResponse(resp)
				assert.ErrorIs(t, err, openai.ErrQuotaExceeded)
				assert.False(t, errors.Is(err, openai.ErrRateLimited), "not a rate limit")
				var api *openai.APIError
				require.ErrorAs(t, err, &api)
				assert.Equal(t, "insufficient_quota", api.Code)
				b, _ := io.ReadAll(resp.Body)
				assert.Equal(t, tt.body, string(b), "the body is whole for the caller")
			})
		})
	}
}

// A token 429 that names no Retry-After, only a reset of its token window
// minutes or hours away (x-ratelimit-reset-tokens), stalls nothing beyond
// the caller's caps: the request it refused gets it back at once, as the
// wait is over the retries' cap (retry.DefaultMaxServerWait); the key is
// paused for the longest pause (bucket.DefaultMaxPause), then the server is
// asked again; and a request whose deadline comes before that fails at
// once, unsent.
func TestALongTokenResetHoldsTheKeyNoLongerThanTheLongestPause(t *testing.T) {
	const tokens = `{"error":{"message":"Rate limit reached for gpt-4o-mini on tokens per min (TPM): Limit 30000, Used 30000, Requested 20.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`
	for _, reset := range []string{"5m0s", "2h0m0s"} {
		t.Run(reset, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				require.Greater(t, 5*time.Minute, retry.DefaultMaxServerWait)
				f := &fake{start: time.Now(), answer: func(n int, _ *http.Request) (int, http.Header, string) {
					if n == 2 {
						return http.StatusTooManyRequests, http.Header{"Content-Type": {"application/json"},
							"X-Ratelimit-Limit-Tokens": {"30000"}, "X-Ratelimit-Remaining-Tokens": {"0"},
							"X-Ratelimit-Reset-Tokens": {reset}}, tokens
					}
					return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"500"}, "X-Ratelimit-Remaining-Requests": {"499"},
						"X-Ratelimit-Reset-Requests": {"120ms"}, "X-Ratelimit-Limit-Tokens": {"30000"},
						"X-Ratelimit-Remaining-Tokens": {"29000"}, "X-Ratelimit-Reset-Tokens": {"2s"}}, `{"usage":{"prompt_tokens":10,"completion_tokens":10}}`
				}}
				rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"))
				send := func(ctx context.Context) (*http.Response, error) {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, openai.DefaultBaseURL+"/chat/completions",
						strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`))
					require.NoError(t, err)
					return rt.RoundTrip(req)
				}
				drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions")) // the limits, learnt

				start := time.Now()
				resp := chat(t, rt, openai.DefaultBaseURL+"/chat/completions")
				assert.Zero(t, time.Since(start), "the 429 is returned at once, not after the reset")
				assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
				assert.ErrorIs(t, openai.CheckResponse(resp), openai.ErrRateLimited)
				drain(resp)

				ctx, cancel := context.WithTimeout(context.Background(), bucket.DefaultMaxPause/2)
				_, err := send(ctx)
				cancel()
				assert.ErrorIs(t, err, transport.ErrDeadline, "a deadline before the pause ends fails the request at once")
				assert.Zero(t, time.Since(start))
				assert.Len(t, f.got, 2, "unsent")

				ctx, cancel = context.WithTimeout(context.Background(), bucket.DefaultMaxPause+time.Second)
				resp, err = send(ctx)
				require.NoError(t, err)
				drain(resp)
				cancel()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				require.Len(t, f.got, 3)
				assert.Equal(t, bucket.DefaultMaxPause, f.at[2]-f.at[1], "the key is paused for the longest pause, not the reset")
			})
		})
	}
}

// The tier is learnt from the first answer: 60 requests a minute is one a
// second, without being told.
func TestTheRateIsLearntFromTheFirstAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{start: time.Now(), answer: func(int, *http.Request) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"60"}}, `{}`
		}}
		rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"))
		for range 6 {
			drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
		}
		assert.Equal(t, 4*time.Second, f.at[5]-f.at[1], "one a second after the answer that told")
	})
}

// A rate that is no number (NaN, from a bad config value) is unknown, as 0
// is: the tier is learnt from the first answer.
func TestANaNRateIsLearnt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{start: time.Now(), answer: func(int, *http.Request) (int, http.Header, string) {
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"60"}}, `{}`
		}}
		rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"), openai.WithRate(openai.RouteChat, math.NaN()))
		for range 6 {
			drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
		}
		assert.Equal(t, 4*time.Second, f.at[5]-f.at[1], "one a second after the answer that told")
	})
}

// Azure: the key in api-key, each deployment limited apart.
func TestAzure(t *testing.T) {
	f := &fake{start: time.Now()}
	rt := openai.NewAzureTransport(f, "https://res.openai.azure.com", openai.WithAPIKey("az-key"))
	drain(chat(t, rt, "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"))
	require.Len(t, f.got, 1)
	assert.Equal(t, "az-key", f.got[0].Header.Get("Api-Key"))
	assert.Empty(t, f.got[0].Header.Get("Authorization"))
	assert.Equal(t, "prod-4o", openai.Deployment(f.got[0]))
	assert.Equal(t, "api-version=2024-10-21", f.got[0].URL.RawQuery)
}

// Azure's 404 for a deployment that does not exist is a model not found:
// the deployment is the model Azure serves.
func TestAzureDeploymentNotFoundIsModelNotFound(t *testing.T) {
	f := &fake{start: time.Now(), answer: func(int, *http.Request) (int, http.Header, string) {
		return http.StatusNotFound, http.Header{}, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`
	}}
	rt := openai.NewAzureTransport(f, "https://res.openai.azure.com", openai.WithAPIKey("az-key"))
	resp := chat(t, rt, "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21")
	defer drain(resp)
	assert.ErrorIs(t, openai.CheckResponse(resp), openai.ErrModelNotFound)
}

// A fallback asked of Azure, where a deployment is its model and nothing
// falls back, is refused as the mistake it is, not ignored: every request
// fails with an error that names the option, and none is sent.
func TestAzureRefusesAFallback(t *testing.T) {
	f := &fake{start: time.Now()}
	rt := openai.NewAzureTransport(f, "https://res.openai.azure.com", openai.WithAPIKey("az-key"),
		openai.WithFallback("prod-4o", "prod-4o-mini"))
	req, err := http.NewRequest(http.MethodPost, "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21",
		strings.NewReader(`{"messages":[]}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		drain(resp)
	}
	require.Error(t, err)
	assert.Contains(t, err.Error(), "azure openai: WithFallback:")
	assert.Empty(t, f.got, "nothing is sent")
}

func TestContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return openai.NewTransport(next, openai.WithAPIKey("contract-key"))
	}, conformance.WithRetriesExpected())
}

// Azure's v1 API names no deployment in the path: each model of the body
// is limited apart, read once for the whole stack.
func TestAzureV1LimitsEachModelApart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{start: time.Now(), answer: func(_ int, req *http.Request) (int, http.Header, string) {
			if m, _, _ := transport.RequestModel(req, 0); m == "gpt-a" {
				return http.StatusTooManyRequests, http.Header{"Retry-After": {"5"}}, `{}`
			}
			return http.StatusOK, http.Header{}, `{}`
		}}
		rt := openai.NewAzureTransport(f, "https://res.openai.azure.com", openai.WithAPIKey("az-key"), openai.WithMaxRetries(0))
		send := func(model string) {
			req, err := http.NewRequest(http.MethodPost, "https://res.openai.azure.com/openai/v1/chat/completions",
				strings.NewReader(`{"model":"`+model+`","messages":[]}`))
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			drain(resp)
		}
		send("gpt-a") // refused: gpt-a waits 5 s
		send("gpt-b") // another model: not held back
		send("gpt-a")
		require.Len(t, f.at, 3)
		assert.Zero(t, f.at[1], "gpt-b is not paused by gpt-a's 429")
		assert.GreaterOrEqual(t, f.at[2], 5*time.Second, "gpt-a waits the server's 5 s")
	})
}

// An account out of quota is told so at once on every request, not only
// the first: its 429s (insufficient_quota, which no wait cures) neither
// pause the model's limiter nor lower its rate, so that a caller that
// keeps asking is not held up to bucket.DefaultMaxPause a request to hear
// the same answer, and the key, once paid for, goes at its rate at once.
func TestAnAccountOutOfQuotaIsNeitherPausedNorSlowed(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`
	synctest.Test(t, func(t *testing.T) {
		const refused = 10
		f := &fake{start: time.Now(), answer: func(n int, _ *http.Request) (int, http.Header, string) {
			if n >= 2 && n < 2+refused {
				return http.StatusTooManyRequests, http.Header{"Content-Type": {"application/json"}}, quota
			}
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"600"}, "X-Ratelimit-Remaining-Requests": {"599"},
				"X-Ratelimit-Reset-Requests": {"100ms"}}, `{"usage":{"prompt_tokens":1,"completion_tokens":1}}`
		}}
		rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"))
		drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions")) // the rate, learnt: 10 a second
		for i := range refused {
			resp := chat(t, rt, openai.DefaultBaseURL+"/chat/completions")
			assert.ErrorIs(t, openai.CheckResponse(resp), openai.ErrQuotaExceeded)
			drain(resp)
			assert.Zero(t, time.Since(f.start), "quota answer %d is returned at once", i+1)
		}
		start := time.Now()
		for range 10 {
			drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
		}
		require.Len(t, f.at, 1+refused+10)
		assert.LessOrEqual(t, time.Since(start), time.Second, "the key, paid for, goes at its rate: not paused, not slowed")
	})
}
