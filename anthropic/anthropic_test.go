package anthropic_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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
	"github.com/steadyapi/steady/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fake struct {
	mu     sync.Mutex
	got    []*http.Request
	models []string
	answer func(n int, model string) (int, http.Header, string)
}

func (f *fake) RoundTrip(req *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(req.Body)
	_ = req.Body.Close()
	model, _ := transport.FindModel(b)
	f.mu.Lock()
	f.got = append(f.got, req)
	f.models = append(f.models, model)
	n := len(f.got)
	f.mu.Unlock()
	status, h, body := http.StatusOK, http.Header{}, `{"type":"message","usage":{"input_tokens":3,"output_tokens":5}}`
	if f.answer != nil {
		status, h, body = f.answer(n, model)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func message(t *testing.T, rt http.RoundTripper, url, model string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url,
		strings.NewReader(`{"model":"`+model+`","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}`))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	return resp
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

func TestTheKeyAndVersionGoToTheAPIOnly(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "sk-ant-env")
	f := &fake{}
	rt := anthropic.NewTransport(f)
	drain(message(t, rt, anthropic.DefaultBaseURL+"/messages", "claude-sonnet-4-5", nil))
	drain(message(t, rt, anthropic.DefaultBaseURL+"/messages", "claude-sonnet-4-5", http.Header{"Anthropic-Version": {"2025-01-01"}}))
	drain(message(t, rt, "https://elsewhere.test/v1/messages", "claude-sonnet-4-5", nil))
	require.Len(t, f.got, 3)
	assert.Equal(t, "sk-ant-env", f.got[0].Header.Get("X-Api-Key"))
	assert.Equal(t, anthropic.Version, f.got[0].Header.Get("Anthropic-Version"))
	assert.Empty(t, f.got[0].Header.Get("Authorization"))
	assert.Equal(t, "2025-01-01", f.got[1].Header.Get("Anthropic-Version"), "the caller's own version is kept")
	assert.Empty(t, f.got[2].Header.Get("X-Api-Key"), "no key for another host")
	assert.Empty(t, f.got[2].Header.Get("Anthropic-Version"))
}

// A model that answers 529 is left at once for the next of its chain
// (Anthropic limits each model apart: the next one's requests cost the
// overloaded one's limit nothing); the last of a chain, or a model
// without one, is retried after the server's retry-after.
func TestOverloadedFallsBackAtOnce(t *testing.T) {
	const overloaded = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	for _, tt := range []struct {
		name     string
		fallback bool
		models   []string
		status   int
		least    time.Duration
	}{
		{"with a fallback", true, []string{"claude-opus-4-1", "claude-sonnet-4-5"}, http.StatusOK, 0},
		{"without one", false, []string{"claude-opus-4-1", "claude-opus-4-1", "claude-opus-4-1"}, transport.StatusOverloaded, 4 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fake{answer: func(n int, model string) (int, http.Header, string) {
					if model == "claude-opus-4-1" {
						return transport.StatusOverloaded, http.Header{"Retry-After": {"2"}}, overloaded
					}
					return http.StatusOK, http.Header{}, `{"usage":{"input_tokens":3,"output_tokens":5}}`
				}}
				opts := []anthropic.Option{anthropic.WithAPIKey("k"), anthropic.WithMaxRetries(2)}
				if tt.fallback {
					opts = append(opts, anthropic.WithFallback("claude-opus-4-1", "claude-sonnet-4-5"))
				}
				rt := anthropic.NewTransport(f, opts...)
				start := time.Now()
				resp := message(t, rt, anthropic.DefaultBaseURL+"/messages", "claude-opus-4-1", nil)
				defer drain(resp)
				assert.Equal(t, tt.status, resp.StatusCode)
				assert.Equal(t, tt.models, f.models)
				if tt.least > 0 {
					assert.GreaterOrEqual(t, time.Since(start), tt.least, "two waits of the server's 2 s")
				} else {
					assert.Zero(t, time.Since(start), "no wait")
					assert.Equal(t, "claude-sonnet-4-5", resp.Header.Get(transport.ModelHeader))
				}
			})
		})
	}
}

func TestCheckResponse(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		kind   error
	}{
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, anthropic.ErrOverloaded},
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`, anthropic.ErrRateLimited},
		{401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`, anthropic.ErrUnauthorized},
		{404, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}}`, anthropic.ErrModelNotFound},
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}`, anthropic.ErrQuotaExceeded},
	} {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{"Request-Id": {"req_1"}}, Body: io.NopCloser(strings.NewReader(tt.body))}
		err := anthropic.CheckResponse(resp)
		assert.ErrorIs(t, err, tt.kind, tt.body)
		var api *anthropic.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, "req_1", api.RequestID)
		assert.True(t, strings.HasPrefix(err.Error(), "anthropic: "), err.Error())
		assert.NotEmpty(t, api.Type)
	}
}

func TestContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return anthropic.NewTransport(next, anthropic.WithAPIKey("contract-key"))
	}, conformance.WithRetriesExpected())
}

// A redirect from the API to another host does not carry the key there,
// even a key the caller's SDK set itself in x-api-key, which net/http
// copies to any host (it takes off Authorization and cookies only); nor
// does the next redirect, from that host to a third, whose request
// net/http gives the first request's headers again.
func TestARedirectOffTheAPIDoesNotCarryTheKey(t *testing.T) {
	var mu sync.Mutex
	var got []string
	seen := func(r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Path+":"+r.Header.Get("X-Api-Key"))
		mu.Unlock()
	}
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		_, _ = io.WriteString(w, `{}`)
	}))
	defer third.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen(r)
		if r.URL.Path == "/hop" {
			http.Redirect(w, r, third.URL+"/collect", http.StatusTemporaryRedirect)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer other.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.Header.Get("X-Then"), http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	for _, then := range []string{"/collect", "/hop"} {
		for _, key := range []string{"", "sk-ant-preset"} {
			rt := anthropic.NewTransport(nil, anthropic.WithAPIKey(key), anthropic.WithBaseURL(api.URL+"/v1"))
			client := &http.Client{Transport: rt}
			req, err := http.NewRequest(http.MethodPost, anthropic.DefaultBaseURL+"/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`))
			require.NoError(t, err)
			req.Header.Set("X-Api-Key", "sk-ant-caller")
			req.Header.Set("X-Then", then)
			resp, err := client.Do(req)
			require.NoError(t, err)
			drain(resp)
			rt.CloseIdleConnections()
		}
	}
	assert.Equal(t, []string{"/collect:", "/collect:", "/hop:", "/collect:", "/hop:", "/collect:"}, got,
		"no key reaches another host, at the first hop or the second")
}
