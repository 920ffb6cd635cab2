package conformance

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ask sends one request to srv in memory and returns its status, headers
// and body.
func ask(t *testing.T, srv *Server, path string, header http.Header, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://sim.test"+path, strings.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.RoundTrip(req)
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode, resp.Header, string(b)
}

const messageBody = `{"model":"claude-x","max_tokens":64,"system":"Be brief.","messages":[{"role":"user","content":[{"type":"text","text":"Hello there"}]}]}`

func TestAnthropicMessages(t *testing.T) {
	srv := NewServer(Config{Dialect: DialectAnthropic, Models: []string{"claude-x"}})
	status, _, body := ask(t, srv, "/v1/messages", http.Header{"X-Api-Key": {"k1"}}, messageBody)
	require.Equal(t, http.StatusOK, status, body)
	var m struct {
		Type    string `json:"type"`
		Model   string `json:"model"`
		Content []struct {
			Type, Text string
		} `json:"content"`
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
		} `json:"usage"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	assert.Equal(t, "message", m.Type)
	assert.Equal(t, "claude-x", m.Model)
	assert.Equal(t, replyText, m.Content[0].Text)
	assert.Equal(t, 5, m.Usage.InputTokens, `"Be brief." and "Hello there": 20 characters`)
	assert.Equal(t, replyTokens, m.Usage.OutputTokens)
	assert.Equal(t, "k1", srv.Arrivals()[0].Key, "the key from x-api-key")

	stream := strings.Replace(messageBody, `"max_tokens":64`, `"max_tokens":64,"stream":true`, 1)
	status, h, body := ask(t, srv, "/v1/messages", nil, stream)
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "text/event-stream", h.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(body, "event: message_start\ndata: {\"type\":\"message_start\""), body)
	assert.Contains(t, body, `"usage":{"input_tokens":5,"output_tokens":1}`, "message_start: the input")
	assert.Contains(t, body, "event: message_delta\ndata: {\"type\":\"message_delta\"")
	assert.Contains(t, body, `"output_tokens":8}`, "message_delta: the output, a token a word")
	assert.True(t, strings.HasSuffix(body, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"))

	status, _, body = ask(t, srv, "/v1/messages", nil, `{"model":"claude-x","messages":[]}`)
	assert.Equal(t, http.StatusBadRequest, status, "max_tokens is required")
	assert.Contains(t, body, `{"type":"error","error":{"type":"invalid_request_error"`)
	status, _, body = ask(t, srv, "/v1/messages", nil, strings.Replace(messageBody, "claude-x", "claude-none", 1))
	assert.Equal(t, http.StatusNotFound, status)
	assert.Equal(t, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-none"}}`, body)
}

// Anthropic's limits: per model, input and output tokens apart, the 429 in
// its shape with its headers; a 529 fault in its shape.
func TestAnthropicLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{Dialect: DialectAnthropic, Headers: HeaderAnthropic | HeaderRetryAfter,
			Models: []string{"claude-x", "claude-y"},
			Limits: map[string]Limit{Messages: {RPM: 600, Burst: 600, TPM: 6000, TokenBurst: 6000, OutputTPM: 18, OutputTokenBurst: 18}},
			Faults: []Fault{{Kind: FaultStatus, Status: 529, Model: "claude-y", From: time.Hour}}})
		status, h, _ := ask(t, srv, "/v1/messages", nil, messageBody)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "18", h.Get("Anthropic-Ratelimit-Output-Tokens-Limit"))
		assert.Equal(t, "10", h.Get("Anthropic-Ratelimit-Output-Tokens-Remaining"), "8 of 18 used")
		assert.Equal(t, "6000", h.Get("Anthropic-Ratelimit-Input-Tokens-Limit"))
		assert.Equal(t, "5995", h.Get("Anthropic-Ratelimit-Input-Tokens-Remaining"))
		assert.Equal(t, "10", h.Get("Anthropic-Ratelimit-Tokens-Remaining"), "the tightest")
		assert.Equal(t, "600", h.Get("Anthropic-Ratelimit-Requests-Limit"))

		ask(t, srv, "/v1/messages", nil, messageBody)
		status, h, body := ask(t, srv, "/v1/messages", nil, messageBody)
		assert.Equal(t, http.StatusTooManyRequests, status, "the output limit is spent")
		assert.Contains(t, body, `{"type":"error","error":{"type":"rate_limit_error"`)
		assert.NotEmpty(t, h.Get("Retry-After"))
		status, _, _ = ask(t, srv, "/v1/messages", nil, strings.Replace(messageBody, "claude-x", "claude-y", 1))
		assert.Equal(t, http.StatusOK, status, "each model has its own limits")

		time.Sleep(time.Hour)
		status, _, body = ask(t, srv, "/v1/messages", nil, strings.Replace(messageBody, "claude-x", "claude-y", 1))
		assert.Equal(t, 529, status)
		assert.Contains(t, body, `"overloaded_error"`)
	})
}

// OpenAI's: usage-counted tokens, 429s that say which limit, and
// insufficient_quota with no rate header.
func TestOpenAIDialect(t *testing.T) {
	const chat = `{"model":"gpt-x","messages":[{"role":"user","content":"12345678"}],"max_tokens":500}`
	srv := NewServer(Config{Dialect: DialectOpenAI, Headers: HeaderOpenAI, Models: []string{"gpt-x", "gpt-quota"},
		Limits: map[string]Limit{Chat: {RPM: 600, Burst: 600, TPM: 33, TokenBurst: 33}},
		Faults: []Fault{{Kind: FaultQuota, Model: "gpt-quota"}}})
	key := http.Header{"Authorization": {"Bearer k"}}
	status, h, body := ask(t, srv, "/v1/chat/completions", key, chat)
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, "23", h.Get("X-Ratelimit-Remaining-Tokens"), "2 of the prompt and 8 generated, not 500")
	assert.Contains(t, body, `"usage":{"prompt_tokens":2,"completion_tokens":8,"total_tokens":10}`)
	ask(t, srv, "/v1/chat/completions", key, chat)
	ask(t, srv, "/v1/chat/completions", key, chat)
	status, _, body = ask(t, srv, "/v1/chat/completions", key, chat)
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, body, `"type":"tokens"`)
	assert.Contains(t, body, `"code":"rate_limit_exceeded"`)

	status, h, body = ask(t, srv, "/v1/chat/completions", nil, strings.Replace(chat, "gpt-x", "gpt-quota", 1))
	assert.Equal(t, http.StatusTooManyRequests, status)
	assert.Contains(t, body, `"code":"insufficient_quota"`)
	assert.Empty(t, h.Get("X-Ratelimit-Reset"), "no wait cures it")
	assert.Empty(t, h.Get("Retry-After"))
}

// ScenariosFor keeps the scenarios' shapes and gives each dialect its own.
func TestScenariosFor(t *testing.T) {
	assert.Equal(t, Scenarios(), ScenariosFor(DialectTogether))
	for _, d := range []Dialect{DialectOpenAI, DialectAnthropic} {
		names := map[string]bool{}
		for _, sc := range ScenariosFor(d) {
			names[sc.Name] = true
			assert.Equal(t, d, sc.Server.Dialect, sc.Name)
			if d == DialectAnthropic && sc.Workload.Texts == 0 {
				assert.Equal(t, Messages, sc.Workload.endpoint(), sc.Name)
			}
		}
		assert.True(t, names["token-bound"], d.String())
		assert.False(t, names["dynamic"], "Together's own limit")
		assert.Equal(t, d == DialectOpenAI, names["embed-job"], d.String())
	}
}
