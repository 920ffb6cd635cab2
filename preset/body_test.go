package preset_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

func gzipped(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.String()
}

// An error body still gzip-compressed (net/http leaves it so when the
// caller asked for gzip itself) is read as what it says: a quota answer is
// not retried, and is named as one, its message readable; the caller
// still gets the body as it came.
func TestAGzippedErrorBodyIsRead(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`
	body := gzipped(t, quota)
	synctest.Test(t, func(t *testing.T) {
		r := &recorder{t0: time.Now(), ans: func(int) (int, string) { return http.StatusTooManyRequests, body }}
		rt := preset.New(groq, transport.Func(func(req *http.Request) (*http.Response, error) {
			resp, err := r.RoundTrip(req)
			resp.Header.Set("Content-Encoding", "gzip")
			return resp, err
		}), preset.WithAPIKey("k"))
		req, err := http.NewRequest(http.MethodPost, groq.BaseURL+"/chat/completions", strings.NewReader(`{"model":"llama"}`))
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Len(t, r.got, 1, "a quota answer is not retried")
		err = preset.CheckResponse(resp, "groq")
		assert.ErrorIs(t, err, preset.ErrQuotaExceeded)
		assert.EqualError(t, err, "groq: 429 Too Many Requests (insufficient_quota): You exceeded your current quota")
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, body, string(b), "the body is whole for the caller, as it came")
	})
}

// The key is removed from an error that echoes it even when the base
// transport answers without naming the request (a test double, a cache):
// the answer names the request that was sent, with the key.
func TestTheKeyIsRemovedFromAnAnswerWithoutItsRequest(t *testing.T) {
	const key = "gsk-live-0123456789abcdef"
	rt := preset.New(groq, transport.Func(func(req *http.Request) (*http.Response, error) {
		body := `{"error":{"message":"Invalid API Key: ` + key + `","code":"invalid_api_key"}}`
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}, nil
	}), preset.WithAPIKey(key))
	client := &http.Client{Transport: rt}
	req, err := http.NewRequest(http.MethodGet, groq.BaseURL+"/models", nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	err = preset.CheckResponse(resp, "groq")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "0123456789abcdef")
	assert.Empty(t, req.Header.Values("Authorization"), "the caller's request is not changed")
}
