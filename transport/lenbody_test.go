package transport_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// lenBody is an in-memory body as a caller may write its own: a
// *bytes.Reader (which has Len and WriteTo) given a Close.
type lenBody struct{ *bytes.Reader }

func (lenBody) Close() error { return nil }

// A request whose GetBody hands out an in-memory reader that tells its
// length falls back like any other.
func TestFallbackWithAGetBodyThatTellsItsLength(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", nil)
	require.NoError(t, err)
	req.Body = lenBody{bytes.NewReader([]byte(chatRequest))}
	req.GetBody = func() (io.ReadCloser, error) { return lenBody{bytes.NewReader([]byte(chatRequest))}, nil }
	req.ContentLength = int64(len(chatRequest))
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))
	require.Len(t, srv.bodies, 2)
	assert.Equal(t, strings.Replace(chatRequest, `"model" : "big"`, `"model" : "medium"`, 1), string(srv.bodies[1]))
}

// Its prompt is counted too, not taken for an empty one.
func TestRequestTokensWithAGetBodyThatTellsItsLength(t *testing.T) {
	body := `{"model":"big","messages":[{"role":"user","content":"` + strings.Repeat("x", 400) + `"}],"max_tokens":7}`
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", nil)
	require.NoError(t, err)
	req.Body = lenBody{bytes.NewReader([]byte(body))}
	req.GetBody = func() (io.ReadCloser, error) { return lenBody{bytes.NewReader([]byte(body))}, nil }
	req.ContentLength = int64(len(body))
	prompt, output := transport.RequestTokens(req)
	assert.Equal(t, 100, prompt)
	assert.Equal(t, 7, output)
}
