package preset_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// groq is a provider without a preset of its own.
var groq = preset.Spec{
	Name:    "groq",
	BaseURL: "https://api.groq.com/openai/v1",
	KeyEnv:  "GROQ_API_KEY",
	Auth:    preset.Bearer,
	Headers: http.Header{"X-Client": {"steady"}},
	Routes: map[string]preset.Route{
		transport.EndpointChat: {Limit: true, RPM: 60, Breaker: true, Fallback: true},
	},
}

type recorder struct {
	mu  sync.Mutex
	got []*http.Request
	at  []time.Duration
	t0  time.Time
	ans func(n int) (int, string)
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	r.mu.Lock()
	r.got = append(r.got, req)
	r.at = append(r.at, time.Since(r.t0))
	n := len(r.got)
	r.mu.Unlock()
	status, body := http.StatusOK, "{}"
	if r.ans != nil {
		status, body = r.ans(n)
	}
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func post(t *testing.T, rt http.RoundTripper, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(`{"model":"llama","messages":[]}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp
}

// A Spec is enough: the key from its variable goes to its origin only,
// with its headers; its route is limited at its rate.
func TestASpecIsAPreset(t *testing.T) {
	t.Setenv("GROQ_API_KEY", "gsk-env")
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now()}
		rt := preset.New(groq, r)
		for range 3 {
			post(t, rt, groq.BaseURL+"/chat/completions")
		}
		post(t, rt, "https://other.example.com/v1/chat/completions")
		require.Len(t, r.got, 4)
		assert.Equal(t, "Bearer gsk-env", r.got[0].Header.Get("Authorization"))
		assert.Equal(t, "steady", r.got[0].Header.Get("X-Client"))
		assert.Empty(t, r.got[3].Header.Get("Authorization"), "no key for another host")
		assert.Empty(t, r.got[3].Header.Get("X-Client"))
		assert.Equal(t, []time.Duration{0, time.Second, 2 * time.Second}, r.at[:3], "60 a minute")
	})
}

// WithAPIKey("") means no key, as an option given means what its
// argument says: the key of the environment variable is not sent in its
// place.
func TestAnEmptyAPIKeyIsNoKey(t *testing.T) {
	t.Setenv("GROQ_API_KEY", "gsk-env")
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey(""), preset.WithBaseURL("http://127.0.0.1:9000/v1"))
	post(t, rt, groq.BaseURL+"/chat/completions")
	require.Len(t, r.got, 1)
	assert.Equal(t, "127.0.0.1:9000", r.got[0].URL.Host)
	assert.Empty(t, r.got[0].Header.Get("Authorization"))
}

// A redirect that carried the key to another port of the same host loses
// it: the key is bound to the origin, scheme, host and port.
func TestTheKeyIsBoundToTheOrigin(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL("http://127.0.0.1:9000/v1"))
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:9001/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer gsk-1")
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	post(t, rt, groq.BaseURL+"/chat/completions")
	require.Len(t, r.got, 2)
	assert.Empty(t, r.got[0].Header.Get("Authorization"), "taken off for another port")
	assert.Equal(t, "Bearer gsk-1", req.Header.Get("Authorization"), "the caller's request is not changed")
	assert.Equal(t, "127.0.0.1:9000", r.got[1].URL.Host, "the default root is moved to the one given")
	assert.Equal(t, "Bearer gsk-1", r.got[1].Header.Get("Authorization"))
}

// A root that is not an absolute URL (its scheme forgotten), or that
// carries credentials net/http's Transport would not send, fails every
// request with an error that says so, and sends nothing: requests for the
// provider's default root, meant for the proxy or simulator, are not sent
// to the provider itself with the key.
func TestABaseURLWithoutAHostIsAnError(t *testing.T) {
	for _, u := range []string{"127.0.0.1:9000/v1", "localhost:8080", "api.groq.test/v1", "http:///v1", "//127.0.0.1:9000/v1",
		"http://tenant:secret@127.0.0.1:9000/v1"} {
		r := &recorder{}
		rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL(u))
		body := &closeCounter{Reader: strings.NewReader(`{"model":"llama"}`)}
		req, err := http.NewRequest(http.MethodPost, groq.BaseURL+"/chat/completions", body)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		if resp != nil {
			_ = resp.Body.Close()
		}
		assert.ErrorContains(t, err, "WithBaseURL", u)
		assert.NotContains(t, err.Error(), "secret", "%s: the root is not shown", u)
		assert.Empty(t, r.got, "%s: nothing is sent", u)
		assert.Equal(t, 1, body.closed, "%s: the body is closed", u)
	}
}

// A Spec whose BaseURL is not an absolute URL with a host (its scheme
// left out) names no origin for the key: every request would go without
// it, and the server's 401 would not say why. Every request fails with an
// error that names the Spec's root instead, and nothing is sent.
func TestASpecBaseURLWithoutAHostIsAnError(t *testing.T) {
	spec := groq
	spec.BaseURL = "api.groq.com/openai/v1"
	r := &recorder{}
	rt := preset.New(spec, r, preset.WithAPIKey("gsk-1"))
	body := &closeCounter{Reader: strings.NewReader(`{"model":"llama"}`)}
	req, err := http.NewRequest(http.MethodPost, "https://api.groq.com/openai/v1/chat/completions", body)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	assert.ErrorContains(t, err, "groq: Spec.BaseURL")
	assert.Empty(t, r.got, "nothing is sent")
	assert.Equal(t, 1, body.closed, "the body is closed")
}

// A rate for a route the preset does not limit (a name mistyped, or a
// route without a limiter) would be ignored: every request fails with an
// error that names it and the routes that take one, and nothing is sent.
// A rate for a limited route, 0 among them, is no error.
func TestARateForARouteNotLimitedIsAnError(t *testing.T) {
	spec := groq
	spec.Routes = map[string]preset.Route{
		transport.EndpointChat:       {Limit: true, RPM: 60},
		transport.EndpointEmbeddings: {Limit: true, RPM: 60},
		transport.EndpointModels:     {Breaker: true},
	}
	for _, tt := range []struct {
		opts []preset.Option
		err  string // "" for none
	}{
		{[]preset.Option{preset.WithRate("chat_completions", 600)}, `groq: WithRate: no rate-limited route named "chat_completions" (the routes with a rate: "chat", "embeddings")`},
		{[]preset.Option{preset.WithRate(transport.EndpointModels, 600), preset.WithRate("", 1)}, `no rate-limited route named "", "models"`},
		{[]preset.Option{preset.WithRate(transport.EndpointChat, 600), preset.WithRate(transport.EndpointEmbeddings, 0)}, ""},
	} {
		r := &recorder{}
		rt := preset.New(spec, r, append(tt.opts, preset.WithAPIKey("k"))...)
		body := &closeCounter{Reader: strings.NewReader(`{"model":"llama"}`)}
		req, err := http.NewRequest(http.MethodPost, groq.BaseURL+"/chat/completions", body)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		if tt.err == "" {
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Len(t, r.got, 1)
			continue
		}
		assert.Nil(t, resp)
		assert.ErrorContains(t, err, tt.err)
		assert.Empty(t, r.got, "nothing is sent")
		assert.Equal(t, 1, body.closed, "the body is closed")
	}
}

type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// A 429 of an account out of quota is returned at once; one of the rate
// limit is retried.
func TestQuotaIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			body     string
			arrivals int
		}{
			{`{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, 1},
			{`{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, 5},
		} {
			r := &recorder{t0: time.Now(), ans: func(int) (int, string) { return http.StatusTooManyRequests, tt.body }}
			rt := preset.New(groq, r, preset.WithAPIKey("k"))
			resp := post(t, rt, groq.BaseURL+"/chat/completions")
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
			assert.Len(t, r.got, tt.arrivals, tt.body)
		}
	})
}

// A quota answer that comes with less than a second left before the
// request's deadline is not retried either: retry trims its jitter to fit
// the deadline, so it retries whenever the server's wait itself fits.
func TestQuotaIsNotRetriedNearTheDeadline(t *testing.T) {
	spec := preset.Spec{Name: "p", BaseURL: groq.BaseURL, Routes: map[string]preset.Route{transport.EndpointChat: {Breaker: true}}}
	quota := `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`
	synctest.Test(t, func(t *testing.T) {
		for _, tt := range []struct {
			after string        // the server's Retry-After
			left  time.Duration // the time left before the deadline
		}{{"0", 500 * time.Millisecond}, {"1", 1500 * time.Millisecond}} {
			r := &recorder{t0: time.Now(), ans: func(int) (int, string) { return http.StatusTooManyRequests, quota }}
			rt := preset.New(spec, transport.Func(func(req *http.Request) (*http.Response, error) {
				resp, err := r.RoundTrip(req)
				resp.Header.Set("Retry-After", tt.after)
				return resp, err
			}), preset.WithAPIKey("k"))
			ctx, cancel := context.WithTimeout(context.Background(), tt.left)
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, spec.BaseURL+"/chat/completions", strings.NewReader(`{"model":"llama"}`))
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			cancel()
			assert.Equal(t, quota, string(b), "the body is whole for the caller")
			assert.Len(t, r.got, 1, "Retry-After: %s, %v left", tt.after, tt.left)
		}
	})
}

// A route whose retry options raise retry's cap on the server's wait
// does not retry a quota answer that asks for a wait between the default
// cap and its own.
func TestQuotaIsNotRetriedUnderARaisedServerWaitCap(t *testing.T) {
	spec := preset.Spec{Name: "p", BaseURL: groq.BaseURL, Routes: map[string]preset.Route{
		transport.EndpointChat: {Retry: []retry.Option{retry.WithMaxServerWait(5 * time.Minute)}},
	}}
	quota := `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), ans: func(int) (int, string) { return http.StatusTooManyRequests, quota }}
		rt := preset.New(spec, transport.Func(func(req *http.Request) (*http.Response, error) {
			resp, err := r.RoundTrip(req)
			resp.Header.Set("Retry-After", "90")
			return resp, err
		}), preset.WithAPIKey("k"))
		resp := post(t, rt, spec.BaseURL+"/chat/completions")
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Len(t, r.got, 1)
	})
}

func TestCheckResponse(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   preset.APIError
		kinds  []error
	}{
		{429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			preset.APIError{Provider: "p", StatusCode: 429, Type: "insufficient_quota", Code: "insufficient_quota", Message: "You exceeded your current quota"},
			[]error{preset.ErrQuotaExceeded}},
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}`,
			preset.APIError{Provider: "p", StatusCode: 429, Type: "rate_limit_error", Message: "slow down"},
			[]error{preset.ErrRateLimited}},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
			preset.APIError{Provider: "p", StatusCode: 529, Type: "overloaded_error", Message: "Overloaded"},
			[]error{preset.ErrOverloaded}},
		{401, `{"error":{"message":"Incorrect API key provided: sk-abcdefgh123456","code":"invalid_api_key"}}`,
			preset.APIError{Provider: "p", StatusCode: 401, Code: "invalid_api_key", Message: "Incorrect API key provided: [redacted]"},
			[]error{preset.ErrUnauthorized}},
	} {
		req, err := http.NewRequest(http.MethodPost, "https://x/v1/messages", nil)
		require.NoError(t, err)
		req.Header.Set("X-Api-Key", "sk-abcdefgh123456")
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tt.body)), Request: req}
		err = preset.CheckResponse(resp, "p")
		var api *preset.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, tt.want, *api)
		for _, k := range []error{preset.ErrRateLimited, preset.ErrQuotaExceeded, preset.ErrOverloaded, preset.ErrUnauthorized} {
			want := false
			for _, w := range tt.kinds {
				want = want || w == k
			}
			assert.Equal(t, want, errors.Is(err, k), "%s: errors.Is(%v)", tt.body, k)
		}
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, tt.body, string(b), "the body is whole for the caller")
	}
}

func TestContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return preset.New(groq, next, preset.WithAPIKey("contract-key"))
	}, conformance.WithRetriesExpected())
}

// A status net/http has no text for (Anthropic's 529) reads as its number
// alone, and a bare error as its status.
func TestAPIErrorMessageWithoutStatusText(t *testing.T) {
	e := &preset.APIError{Provider: "anthropic", StatusCode: 529, Type: "overloaded_error", Message: "Overloaded"}
	assert.Equal(t, "anthropic: 529 (overloaded_error): Overloaded", e.Error())
	assert.Equal(t, "steady: 503 Service Unavailable", (&preset.APIError{StatusCode: 503}).Error())
}

// A key a provider takes in a header of its own naming (a Spec's Auth,
// such as Google's X-Goog-Api-Key) is removed from an error that echoes
// it, as the usual headers' keys are; so is a token in any header named
// for a key, a token or a secret.
func TestCheckResponseRedactsEveryCredentialHeader(t *testing.T) {
	for _, h := range []string{"X-Goog-Api-Key", "X-Auth-Token", "Ocp-Apim-Subscription-Key", "X-Client-Secret", "Proxy-Authorization"} {
		req, err := http.NewRequest(http.MethodPost, "https://x/v1/chat", nil)
		require.NoError(t, err)
		req.Header.Set(h, "AIzaSyD-secret-0123456789")
		body := `{"error":{"message":"API key not valid: AIzaSyD-secret-0123456789","code":"AIzaSyD-secret-0123456789"}}`
		resp := &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		var api *preset.APIError
		require.ErrorAs(t, preset.CheckResponse(resp, "p"), &api)
		assert.Equal(t, "API key not valid: [redacted]", api.Message, h)
		assert.Equal(t, "[redacted]", api.Code, h)
		assert.NotContains(t, api.Error(), "secret-0123456789", h)
	}
}

// The whole key is removed, whatever its characters (a base64 token holds
// "+", "/" and "="), and whatever the case of its scheme ("bearer" is as
// valid as "Bearer").
func TestCheckResponseRedactsTheWholeKey(t *testing.T) {
	for _, tc := range []struct{ header, value, key string }{
		{"Authorization", "Bearer tok3nAB+cd/EF==", "tok3nAB+cd/EF=="},
		{"Authorization", "bearer sk-live-0123456789", "sk-live-0123456789"},
		{"Authorization", "BEARER sk-live-0123456789", "sk-live-0123456789"},
	} {
		req, err := http.NewRequest(http.MethodPost, "https://x/v1/chat", nil)
		require.NoError(t, err)
		req.Header.Set(tc.header, tc.value)
		body := `{"error":{"message":"invalid token ` + tc.key + `","code":"bad_key"}}`
		resp := &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		var api *preset.APIError
		require.ErrorAs(t, preset.CheckResponse(resp, "p"), &api)
		assert.Equal(t, "invalid token [redacted]", api.Message, tc.value)
		assert.NotContains(t, api.Error(), tc.key[8:], tc.value)
	}
}

// TestAJobIsNotCreatedTwice: each preset's routes that create billed jobs
// (fine-tunes, batches) send a creation once when the answer says the job
// may exist (500, 502, 504), and the caller gets that answer; a 503 (the
// job was refused), a GET, a creation with an Idempotency-Key and an
// inference call are retried as before.
func TestAJobIsNotCreatedTwice(t *testing.T) {
	for _, tc := range []struct {
		name   string
		spec   preset.Spec
		create []string // paths under the API root that create jobs
		infer  string
	}{
		{"together", together.Spec(), []string{"/fine-tunes", "/batches"}, "/chat/completions"},
		{"openai", openai.Spec(), []string{"/fine_tuning/jobs", "/batches"}, "/chat/completions"},
		{"anthropic", anthropic.Spec(), []string{"/messages/batches"}, "/messages"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			send := func(method, path string, status int, header http.Header) int {
				var arrivals int
				synctest.Test(t, func(t *testing.T) {
					r := &recorder{t0: time.Now(), ans: func(n int) (int, string) {
						if n == 1 {
							return status, `{"error":{"message":"upstream"}}`
						}
						return http.StatusOK, "{}"
					}}
					rt := preset.New(tc.spec, r, preset.WithAPIKey("k"))
					var body io.Reader
					if method == http.MethodPost {
						body = strings.NewReader(`{"model":"llama","training_file":"file-1"}`)
					}
					req, err := http.NewRequestWithContext(t.Context(), method, tc.spec.BaseURL+path, body)
					require.NoError(t, err)
					for k, v := range header {
						req.Header[k] = v
					}
					resp, err := rt.RoundTrip(req)
					require.NoError(t, err)
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
					if len(r.got) == 1 {
						assert.Equal(t, status, resp.StatusCode, "the caller gets the answer")
					}
					arrivals = len(r.got)
				})
				return arrivals
			}
			for _, path := range tc.create {
				for _, status := range []int{500, 502, 504} {
					assert.Equal(t, 1, send(http.MethodPost, path, status, nil), "POST %s answered %d", path, status)
					assert.Equal(t, 2, send(http.MethodPost, path, status, http.Header{"Idempotency-Key": {"job-1"}}),
						"POST %s answered %d, with an Idempotency-Key", path, status)
					assert.Equal(t, 2, send(http.MethodGet, path, status, nil), "GET %s answered %d", path, status)
				}
				assert.Equal(t, 2, send(http.MethodPost, path, 503, nil), "POST %s answered 503", path)
			}
			assert.Equal(t, 2, send(http.MethodPost, tc.infer, 502, nil), "an inference call is retried")
		})
	}
}

// A key read from a file, its line end kept, is sent without it: net/http
// refuses a header value with a line end, and every request would fail.
func TestAKeyIsSentWithoutItsLineEnd(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey(" gsk-1\r\n"))
	post(t, rt, groq.BaseURL+"/chat/completions")
	require.Len(t, r.got, 1)
	assert.Equal(t, "Bearer gsk-1", r.got[0].Header.Get("Authorization"))
	r = &recorder{}
	rt = preset.New(groq, r, preset.WithAPIKey("\n"))
	post(t, rt, groq.BaseURL+"/chat/completions")
	require.Len(t, r.got, 1)
	assert.Empty(t, r.got[0].Header.Values("Authorization"), "a key of spaces is no key")
}

// A request moved to the root given keeps its path's escapes: an ID with
// an escaped slash is not sent as two segments.
func TestAMovedRequestKeepsItsEscapes(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL("http://127.0.0.1:9000/proxy/v1"))
	for _, tc := range []struct{ path, want string }{
		{"/files/a%2Fb/content", "/proxy/v1/files/a%2Fb/content"},
		{"/files/a%20b", "/proxy/v1/files/a%20b"},
		{"/models", "/proxy/v1/models"},
	} {
		req, err := http.NewRequest(http.MethodGet, groq.BaseURL+tc.path, nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		got := r.got[len(r.got)-1].URL
		assert.Equal(t, "127.0.0.1:9000", got.Host)
		assert.Equal(t, tc.want, got.EscapedPath(), tc.path)
		assert.Equal(t, groq.BaseURL+tc.path, req.URL.String(), "the caller's request is not changed")
	}
}

// The key and the Spec's headers go on a copy of the caller's header map,
// whatever the caller's map holds (nothing, a nil map, values with room
// to grow): the caller's map keeps exactly what it had, the copy's
// values are clipped, so that appending to them never writes into the
// caller's arrays (or the key's), and no request's copy is another's.
func TestTheKeyGoesOnACopyOfTheHeader(t *testing.T) {
	for name, h := range map[string]http.Header{
		"nil":   nil,
		"empty": {},
		"some":  {"Content-Type": make([]string, 1, 4), "Accept": {"application/json"}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"))
			req, err := http.NewRequest(http.MethodGet, groq.BaseURL+"/models", nil)
			require.NoError(t, err)
			req.Header = h
			before := h.Clone()
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Len(t, r.got, 1)
			sent := r.got[0].Header
			assert.Equal(t, before, req.Header, "the caller's header is not changed")
			assert.Equal(t, "Bearer gsk-1", sent.Get("Authorization"))
			assert.Equal(t, "steady", sent.Get("X-Client"))
			assert.Len(t, sent, len(h)+2)
			for k, v := range sent {
				assert.Equal(t, len(v), cap(v), "the copy's values are clipped: %s", k)
			}
			for k, v := range h {
				assert.Equal(t, v, sent[k])
			}
			// What a base does to one request's copy (against the
			// RoundTripper contract) does not reach the next request's.
			sent.Add("Authorization", "Bearer other")
			sent.Set("X-Client", "other")
			sent.Set("X-Added", "1")
			req.Header = h
			resp, err = rt.RoundTrip(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Len(t, r.got, 2)
			assert.Equal(t, []string{"Bearer gsk-1"}, r.got[1].Header["Authorization"])
			assert.Equal(t, []string{"steady"}, r.got[1].Header["X-Client"])
			assert.Len(t, r.got[1].Header, len(h)+2)
		})
	}
}

// With FallBackAtOnce, a model asked for that answers 503 is left at once
// for the next of its chain; an alternate, which has no chain of its own,
// is retried before the chain moves on, as every model is without it.
func TestFallBackAtOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		atOnce bool
		want   []string
	}{
		{"at once", true, []string{"llama", "mixtral", "mixtral", "qwen"}},
		{"after retries", false, []string{"llama", "llama", "mixtral", "mixtral", "qwen"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				spec := groq
				spec.Routes = map[string]preset.Route{
					transport.EndpointChat: {Breaker: true, Fallback: true, FallBackAtOnce: tt.atOnce},
				}
				var models []string
				rec := &recorder{t0: time.Now()}
				rec.ans = func(n int) (int, string) {
					m, _, _ := transport.RequestModel(rec.got[n-1], 0)
					models = append(models, m)
					if m == "qwen" {
						return http.StatusOK, "{}"
					}
					return http.StatusServiceUnavailable, `{"error":{"message":"overloaded"}}`
				}
				rt := preset.New(spec, rec, preset.WithAPIKey("k"), preset.WithMaxRetries(1),
					preset.WithFallback("llama", "mixtral", "qwen"))
				resp := post(t, rt, "https://api.groq.com/openai/v1/chat/completions")
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, tt.want, models)
			})
		})
	}
}

// A Spec's header written in lower case, as HTTP/2 and most API
// references spell them, is the caller's header of that name: a request
// that carries it keeps its own value, alone, and one that does not gets
// the Spec's.
func TestASpecHeaderInLowerCaseIsTheCallersOfThatName(t *testing.T) {
	spec := preset.Spec{Name: "x", BaseURL: "https://api.x.test/v1", Auth: preset.APIKeyHeader,
		Headers: http.Header{"anthropic-version": {"2023-06-01"}}}
	r := &recorder{}
	rt := preset.New(spec, r, preset.WithAPIKey("k-1"))
	for _, own := range []string{"2024-01-01", ""} {
		req, err := http.NewRequest(http.MethodGet, spec.BaseURL+"/models", nil)
		require.NoError(t, err)
		if own != "" {
			req.Header.Set("Anthropic-Version", own)
		}
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	require.Len(t, r.got, 2)
	assert.Equal(t, http.Header{"Anthropic-Version": {"2024-01-01"}, "X-Api-Key": {"k-1"}}, r.got[0].Header)
	assert.Equal(t, http.Header{"Anthropic-Version": {"2023-06-01"}, "X-Api-Key": {"k-1"}}, r.got[1].Header)
}

// An empty alternate, as a variable left unset gives
// (WithFallback(model, os.Getenv(...))), names no model: it is no
// alternate. A model whose chain holds none is retried as any model is,
// and no request is sent for the model "", which the server would answer
// 404, in place of the model's own answer.
func TestAnEmptyAlternateIsNoAlternate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		spec := groq
		spec.Routes = map[string]preset.Route{
			transport.EndpointChat: {Breaker: true, Fallback: true, FallBackAtOnce: true},
		}
		var models []string
		rec := &recorder{t0: time.Now()}
		rec.ans = func(n int) (int, string) {
			m, _, _ := transport.RequestModel(rec.got[n-1], 0)
			models = append(models, m)
			switch {
			case m == "":
				return http.StatusNotFound, `{"error":{"message":"The model does not exist","code":"model_not_found"}}`
			case n == 1:
				return http.StatusServiceUnavailable, `{"error":{"message":"overloaded"}}`
			}
			return http.StatusOK, "{}"
		}
		rt := preset.New(spec, rec, preset.WithAPIKey("k"), preset.WithFallback("llama", ""))
		resp := post(t, rt, "https://api.groq.com/openai/v1/chat/completions")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, []string{"llama", "llama"}, models, "the model is retried")
	})
}

// A request's header map may hold a name as the caller wrote it, not in
// canonical form ("api-key", as Azure's own examples spell it, in a map
// literal or set by index), and net/http sends it so. The preset's key
// header and its Spec's headers are the caller's under any spelling:
// neither is added a second time beside them (two api-key values, two
// anthropic-versions), and a key header so spelt is still taken off a
// request for another origin (a redirect off the API carries every header
// but Authorization and cookies).
func TestAHeaderOfAnySpellingIsTheCallers(t *testing.T) {
	spec := preset.Spec{Name: "x", BaseURL: "https://api.x.test/v1", Auth: preset.AzureKey,
		Headers: http.Header{"Anthropic-Version": {"2023-06-01"}}}
	r := &recorder{}
	rt := preset.New(spec, r, preset.WithAPIKey("preset-key"))
	send := func(url string, h http.Header) http.Header {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header = h
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return r.got[len(r.got)-1].Header
	}
	got := send(spec.BaseURL+"/models", http.Header{"api-key": {"caller-key"}, "anthropic-version": {"2024-01-01"}})
	assert.Equal(t, http.Header{"api-key": {"caller-key"}, "anthropic-version": {"2024-01-01"}}, got,
		"the caller's key and version, alone")
	// The first hop was the API: the key's header goes nowhere else.
	api, err := http.NewRequest(http.MethodGet, spec.BaseURL+"/models", nil)
	require.NoError(t, err)
	redirect, err := http.NewRequest(http.MethodGet, "https://elsewhere.test/collect", nil)
	require.NoError(t, err)
	redirect.Response = &http.Response{StatusCode: http.StatusTemporaryRedirect, Request: api}
	redirect.Header = http.Header{"API-KEY": {"caller-key"}, "Accept": {"*/*"}}
	resp, err := rt.RoundTrip(redirect)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.Header{"Accept": {"*/*"}}, r.got[len(r.got)-1].Header, "no key off the API, however spelt")
	assert.Equal(t, http.Header{"API-KEY": {"caller-key"}, "Accept": {"*/*"}}, redirect.Header, "the caller's request is not changed")
}
