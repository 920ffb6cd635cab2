package conformance_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const (
	srvChatModel  = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	srvEmbedModel = "BAAI/bge-large-en-v1.5"
	srvChatBody   = `{"model":"` + srvChatModel + `","messages":[{"role":"user","content":"hello"}]}`
)

// srvReply is one answer read whole: status, headers, body.
type srvReply struct {
	status int
	header http.Header
	body   string
}

// srvDo sends one request to rt with key as its bearer token and reads the
// whole answer; a transport error fails the test.
func srvDo(t testing.TB, rt http.RoundTripper, method, path, key, body string) srvReply {
	t.Helper()
	resp, err := srvSend(context.Background(), rt, method, path, key, body)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return srvReply{resp.StatusCode, resp.Header, string(b)}
}

// srvSend sends one request and returns the raw outcome.
func srvSend(ctx context.Context, rt http.RoundTripper, method, path, key, body string) (*http.Response, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://provider.test"+path, rd)
	if err != nil {
		return nil, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return rt.RoundTrip(req)
}

// srvChat sends the standard chat request.
func srvChat(t testing.TB, rt http.RoundTripper, key string) srvReply {
	t.Helper()
	return srvDo(t, rt, http.MethodPost, "/v1/chat/completions", key, srvChatBody)
}

// srvErrorType is the "type" of a Together error body.
func srvErrorType(t testing.TB, body string) string {
	t.Helper()
	var e struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	require.NotEmpty(t, e.Error.Message)
	return e.Error.Type
}
