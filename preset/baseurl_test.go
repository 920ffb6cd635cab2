package preset_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/preset"
)

// A root given with an escape in its path (a proxy's tenant with an
// escaped slash) keeps it: requests moved there are not sent to a path
// of more segments.
func TestARootKeepsItsEscapes(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL("http://127.0.0.1:9000/t%2Fa/v1"))
	for _, tc := range []struct{ path, want string }{
		{"/models", "/t%2Fa/v1/models"},
		{"/files/x%2Fy", "/t%2Fa/v1/files/x%2Fy"},
	} {
		req, err := http.NewRequest(http.MethodGet, groq.BaseURL+tc.path, nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, tc.want, r.got[len(r.got)-1].URL.EscapedPath(), tc.path)
	}
}

// A root given with slashes after it is the root without them.
func TestARootLosesItsTrailingSlashes(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL("http://127.0.0.1:9000/v1//"))
	req, err := http.NewRequest(http.MethodGet, groq.BaseURL+"/models", nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, "/v1/models", r.got[0].URL.Path)
}

// A root given with a query (a gateway's tenant) keeps it: requests moved
// there carry its parameters ahead of their own, instead of reaching the
// gateway without them.
func TestARootKeepsItsQuery(t *testing.T) {
	r := &recorder{}
	rt := preset.New(groq, r, preset.WithAPIKey("gsk-1"), preset.WithBaseURL("http://127.0.0.1:9000/v1?tenant=a"))
	for _, tc := range []struct{ path, want string }{
		{"/models", "tenant=a"},
		{"/models?limit=5", "tenant=a&limit=5"},
	} {
		req, err := http.NewRequest(http.MethodGet, groq.BaseURL+tc.path, nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		got := r.got[len(r.got)-1].URL
		assert.Equal(t, "/v1/models", got.Path, tc.path)
		assert.Equal(t, tc.want, got.RawQuery, tc.path)
	}
}
