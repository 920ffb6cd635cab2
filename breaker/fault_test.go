package breaker_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
)

// TestARequestNetHTTPRefusesDoesNotCount: a request net/http refuses to
// send (a header value with a line break, as one copied from a user's
// input has; a header name with a space; a method that is not a token)
// fails on the caller's side and says nothing of the model. Counted, a
// few of them from one caller opened the model's breaker for every
// caller.
func TestARequestNetHTTPRefusesDoesNotCount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	rt := breaker.New()(base)
	request := func() *http.Request {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
		require.NoError(t, err)
		return req
	}
	for name, spoil := range map[string]func(*http.Request){
		"a header value with a line break": func(r *http.Request) { r.Header.Set("X-User", "a\r\nX-Injected: 1") },
		"a header name with a space":       func(r *http.Request) { r.Header["X User"] = []string{"a"} },
		"a trailer value with a NUL":       func(r *http.Request) { r.Trailer = http.Header{"X-Sum": {"a\x00"}} },
		"a method that is not a token":     func(r *http.Request) { r.Method = "PO ST" },
	} {
		for range 2 * breaker.DefaultConsecutiveFailures {
			req := request()
			spoil(req)
			resp, err := rt.RoundTrip(req)
			require.Error(t, err, name)
			require.Nil(t, resp)
			assert.NotErrorIs(t, err, breaker.ErrOpen, "%s: refused by net/http, not by the breaker", name)
		}
	}
	resp, err := rt.RoundTrip(request())
	require.NoError(t, err, "the model's breaker is closed: no request reached it")
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// A failure of the connection still counts.
	srv.Close()
	for range breaker.DefaultConsecutiveFailures {
		_, err := rt.RoundTrip(request())
		require.Error(t, err)
	}
	_, err = rt.RoundTrip(request())
	assert.ErrorIs(t, err, breaker.ErrOpen, "five refused connections open it")
}
