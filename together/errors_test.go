package together_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
)

func response(status int, body string, kv ...string) *http.Response {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	req, _ := http.NewRequest("POST", "https://api.together.xyz/v1/chat/completions", nil)
	req.Header.Set("Authorization", "Bearer tgp_v1_SECRETSECRETSECRET")
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), Request: req}
}

func TestCheckResponse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		resp  *http.Response
		want  together.APIError
		kinds []error
	}{
		{
			"Together 429",
			response(429, `{"error":{"message":"rate limit","type":"dynamic_request_limited","param":null,"code":null}}`, "X-Request-Id", "req-1"),
			together.APIError{Provider: "together", StatusCode: 429, Type: "dynamic_request_limited", Message: "rate limit", RequestID: "req-1"},
			[]error{together.ErrRateLimited},
		},
		{
			"model not found",
			response(404, `{"error":{"message":"Unable to access model x","type":"invalid_request_error","param":"model","code":"model_not_found"}}`),
			together.APIError{Provider: "together", StatusCode: 404, Type: "invalid_request_error", Code: "model_not_found", Param: "model", Message: "Unable to access model x"},
			[]error{together.ErrModelNotFound},
		},
		{
			"overloaded 503",
			response(503, `{"error":{"message":"The server is overloaded","type":"server_error","code":503}}`),
			together.APIError{Provider: "together", StatusCode: 503, Type: "server_error", Code: "503", Message: "The server is overloaded"},
			[]error{together.ErrOverloaded},
		},
		{
			"Anthropic 529",
			response(529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`),
			together.APIError{Provider: "together", StatusCode: 529, Type: "overloaded_error", Message: "Overloaded"},
			[]error{together.ErrOverloaded},
		},
		{
			"spending limit",
			response(402, `{"error":"Credit limit exceeded"}`),
			together.APIError{Provider: "together", StatusCode: 402, Message: "Credit limit exceeded"},
			[]error{together.ErrSpendingLimit},
		},
		{
			"unauthorized echoes the key",
			response(401, `{"error":{"message":"Invalid API key provided: tgp_v1_SECRETSECRETSECRET","type":"invalid_api_key"}}`),
			together.APIError{Provider: "together", StatusCode: 401, Type: "invalid_api_key", Message: "Invalid API key provided: [redacted]"},
			[]error{together.ErrUnauthorized},
		},
		{
			"unauthorized echoes a prefix of the key",
			response(403, `{"message":"key tgp_v1_S*** not allowed","type":"forbidden"}`),
			together.APIError{Provider: "together", StatusCode: 403, Type: "forbidden", Message: "key [redacted]*** not allowed"},
			[]error{together.ErrUnauthorized},
		},
		{
			"not JSON",
			response(502, "<html>Bad Gateway</html>"),
			together.APIError{Provider: "together", StatusCode: 502, Message: "<html>Bad Gateway</html>"},
			nil,
		},
		{
			"empty body",
			response(500, ""),
			together.APIError{Provider: "together", StatusCode: 500},
			nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := together.CheckResponse(tc.resp)
			var api *together.APIError
			require.ErrorAs(t, err, &api)
			assert.Equal(t, tc.want, *api)
			all := []error{together.ErrRateLimited, together.ErrOverloaded, together.ErrModelNotFound, together.ErrSpendingLimit, together.ErrUnauthorized}
			for _, k := range all {
				want := false
				for _, w := range tc.kinds {
					want = want || w == k
				}
				assert.Equal(t, want, errors.Is(err, k), "errors.Is(%v)", k)
			}
			assert.NotContains(t, err.Error(), "SECRETSECRET")
		})
	}
}

func TestCheckResponseKeepsTheBody(t *testing.T) {
	body := `{"error":{"message":"slow down","type":"dynamic_request_limited"}}`
	resp := response(429, body)
	require.Error(t, together.CheckResponse(resp))
	got, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, body, string(got), "the caller can still read the whole body")
	assert.NoError(t, resp.Body.Close())
}

func TestCheckResponseBoundsItsRead(t *testing.T) {
	huge := strings.Repeat("x", 50<<20)
	resp := response(500, huge)
	err := together.CheckResponse(resp)
	var api *together.APIError
	require.ErrorAs(t, err, &api)
	assert.LessOrEqual(t, len(api.Message), 512)
	n, _ := io.Copy(io.Discard, resp.Body)
	assert.Equal(t, int64(len(huge)), n, "nothing of the body is lost")
}

func TestCheckResponseOK(t *testing.T) {
	for _, s := range []int{200, 201, 204} {
		assert.NoError(t, together.CheckResponse(response(s, "{}")))
	}
}

func TestAPIErrorMessage(t *testing.T) {
	e := &together.APIError{Provider: "together", StatusCode: 429, Type: "dynamic_request_limited", Message: "slow down", RequestID: "r1"}
	assert.Equal(t, "together: 429 Too Many Requests (dynamic_request_limited): slow down [request r1]", e.Error())
}
