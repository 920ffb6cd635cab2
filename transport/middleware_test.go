package transport_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// tag returns a middleware that appends name to the X-Trace header of a
// clone of the request, so the order of decorators is visible to the base.
func tag(name string) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			r := req.Clone(req.Context())
			r.Header.Add("X-Trace", name)
			return next.RoundTrip(r)
		})
	}
}

func TestChainOrderFirstIsOutermost(t *testing.T) {
	var seen []string
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		seen = req.Header.Values("X-Trace")
		return &http.Response{StatusCode: 204, Body: http.NoBody, Request: req}, nil
	})
	rt := transport.Chain(base, tag("a"), nil, tag("b"), tag("c"))
	req, err := http.NewRequest("GET", "http://example.test/", nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, 204, resp.StatusCode)
	assert.Equal(t, []string{"a", "b", "c"}, seen)
	assert.Empty(t, req.Header.Values("X-Trace"), "the caller's request is not modified")
}

func TestChainNilBaseIsDefaultTransport(t *testing.T) {
	assert.Same(t, http.DefaultTransport, transport.Chain(nil))
	assert.Same(t, http.DefaultTransport, transport.Chain(nil, nil))
}

func TestFuncRoundTrip(t *testing.T) {
	want := &http.Response{StatusCode: 200, Body: http.NoBody}
	var got *http.Request
	f := transport.Func(func(r *http.Request) (*http.Response, error) { got = r; return want, nil })
	req, _ := http.NewRequest("POST", "http://x.test/v1", strings.NewReader("{}"))
	resp, err := f.RoundTrip(req)
	require.NoError(t, err)
	assert.Same(t, want, resp)
	assert.Same(t, req, got)
}
