package transport_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestFindModel(t *testing.T) {
	tests := []struct {
		name, body, want string
		ok               bool
	}{
		{"first", `{"model":"a/b","messages":[]}`, "a/b", true},
		{"last", `{"messages":[{"role":"user","content":"hi"}],"model":"m"}`, "m", true},
		{"spaces", " \n{ \"model\" :\t\"m\" } \r\n", "m", true},
		{"nested model ignored", `{"x":{"model":"inner"},"model":"outer"}`, "outer", true},
		{"nested only", `{"x":{"model":"inner"},"y":["model","z"]}`, "", false},
		{"model inside a string", `{"content":"\"model\":\"fake\"","model":"real"}`, "real", true},
		{"escaped quote before model", `{"a":"x\\","model":"m"}`, "m", true},
		{"escaped value", `{"model":"meta-llama\/Llama \u00e9\"q"}`, `meta-llama/Llama é"q`, true},
		{"escaped key", `{"mod\u0065l":"m"}`, "m", true},
		{"other values", `{"n":-1.5e3,"t":true,"f":false,"z":null,"a":[1,{"b":[]}],"model":"m"}`, "m", true},
		{"empty model", `{"model":""}`, "", true},
		{"duplicate model", `{"model":"a","model":"b"}`, "", false},
		{"model not a string", `{"model":7}`, "", false},
		{"model null", `{"model":null}`, "", false},
		{"empty object", `{}`, "", false},
		{"array", `["model","m"]`, "", false},
		{"not json", `model=m`, "", false},
		{"empty", ``, "", false},
		{"truncated", `{"model":"m","messages":[{"role":"us`, "", false},
		{"trailing garbage", `{"model":"m"}x`, "", false},
		{"two objects", `{"model":"m"}{"model":"n"}`, "", false},
		{"missing colon", `{"model" "m"}`, "", false},
		{"missing comma", `{"a":1 "model":"m"}`, "", false},
		{"trailing comma", `{"model":"m",}`, "", false},
		{"mismatched brackets", `{"a":[1},"model":"m"}`, "", false},
		{"unterminated string", `{"model":"m`, "", false},
		{"bad literal", `{"a":tru,"model":"m"}`, "", false},
		{"key case matters", `{"Model":"m"}`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := transport.FindModel([]byte(tt.body))
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

// Escapes land at every offset of the eight-byte words the scanner reads.
func TestFindModelEscapesAtEveryOffset(t *testing.T) {
	for n := range 24 {
		for _, esc := range []string{`\"`, `\\`, `\\\"`, `\u0022`, `\n`} {
			content := strings.Repeat("a", n) + esc + strings.Repeat("b", 24-n)
			for _, body := range []string{
				`{"content":"` + content + `","model":"m"}`,
				`{"messages":[{"content":"` + content + `"}],"model":"m"}`,
				`{"x":"` + strings.Repeat("c", n) + `\\","model":"m"}`,
			} {
				got, ok := transport.FindModel([]byte(body))
				assert.True(t, ok, body)
				assert.Equal(t, "m", got, body)
			}
		}
		truncated := `{"model":"m","x":"` + strings.Repeat("a", n) + `\"`
		_, ok := transport.FindModel([]byte(truncated))
		assert.False(t, ok, truncated)
	}
}

func TestRewriteModelKeepsEveryOtherByte(t *testing.T) {
	tests := []struct {
		name, body, model, want string
	}{
		{"first", `{"model":"a","x":1}`, "b", `{"model":"b","x":1}`},
		{"layout kept", "{\n  \"messages\" : [ {\"role\":\"user\"} ],\n  \"model\" :  \"old\" , \"n\": 1.50 }\n",
			"new/model", "{\n  \"messages\" : [ {\"role\":\"user\"} ],\n  \"model\" :  \"new/model\" , \"n\": 1.50 }\n"},
		{"escaped old value", `{"model":"a\u0062","stream":true}`, "c", `{"model":"c","stream":true}`},
		{"quote in new model", `{"model":"a"}`, `x"y`, `{"model":"x\"y"}`},
		{"longer", `{"model":"a","z":"\"model\":\"a\""}`, "abcdefgh", `{"model":"abcdefgh","z":"\"model\":\"a\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			got, ok := transport.RewriteModel(body, tt.model)
			require.True(t, ok)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.body, string(body), "the input is not modified")
			m, ok := transport.FindModel(got)
			require.True(t, ok)
			assert.Equal(t, tt.model, m)
		})
	}
	_, ok := transport.RewriteModel([]byte(`{"model":1}`), "m")
	assert.False(t, ok)
}

func TestRequestModel(t *testing.T) {
	const body = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	t.Run("GetBody: the request itself is sent, its body untouched", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, "http://x/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		model, send, err := transport.RequestModel(req, 0)
		require.NoError(t, err)
		assert.Equal(t, "m", model)
		assert.Same(t, req, send)
		b, err := io.ReadAll(req.Body)
		require.NoError(t, err)
		assert.Equal(t, body, string(b))
	})
	t.Run("no GetBody: a copy replays the bytes read", func(t *testing.T) {
		rc := &modelBody{Reader: strings.NewReader(body)}
		req, err := http.NewRequest(http.MethodPost, "http://x/", rc)
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		model, send, err := transport.RequestModel(req, 0)
		require.NoError(t, err)
		assert.Equal(t, "m", model)
		assert.NotSame(t, req, send)
		assert.Equal(t, 1, rc.closed, "the consumed body is closed")
		b, err := io.ReadAll(send.Body)
		require.NoError(t, err)
		assert.Equal(t, body, string(b))
		assert.Equal(t, int64(len(body)), send.ContentLength)
		require.NotNil(t, send.GetBody)
	})
	t.Run("larger than the limit: no model, the whole body still sent", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, "http://x/", io.NopCloser(strings.NewReader(body)))
		require.NoError(t, err)
		model, send, err := transport.RequestModel(req, 8)
		require.NoError(t, err)
		assert.Empty(t, model)
		b, err := io.ReadAll(send.Body)
		require.NoError(t, err)
		assert.Equal(t, body, string(b))
	})
	t.Run("GetBody larger than the limit", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, "http://x/", strings.NewReader(body))
		require.NoError(t, err)
		req.ContentLength = -1 // unknown: found out by reading
		model, send, err := transport.RequestModel(req, 8)
		require.NoError(t, err)
		assert.Empty(t, model)
		assert.Same(t, req, send)
	})
	t.Run("no body", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, "http://x/v1/models", nil)
		require.NoError(t, err)
		model, send, err := transport.RequestModel(req, 0)
		require.NoError(t, err)
		assert.Empty(t, model)
		assert.Same(t, req, send)
	})
	t.Run("read error", func(t *testing.T) {
		rc := &modelBody{Reader: io.MultiReader(strings.NewReader(`{"mo`), modelReadError{})}
		req, err := http.NewRequest(http.MethodPost, "http://x/", rc)
		require.NoError(t, err)
		_, send, err := transport.RequestModel(req, 0)
		require.Error(t, err)
		assert.Nil(t, send)
		assert.Equal(t, 1, rc.closed)
	})
}

type modelBody struct {
	io.Reader
	closed int
}

func (c *modelBody) Close() error { c.closed++; return nil }

type modelReadError struct{}

func (modelReadError) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// chatBody returns a chat request of about size bytes whose model comes last,
// as encoders that sort keys write it: the worst case for a scanner.
func chatBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"max_tokens":512,"messages":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":"user","content":"Message %d: the quick brown fox jumps over the lazy dog, \"quoted\" and escaped\\n line."}`, i)
	}
	b.WriteString(`],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","stream":true,"temperature":0.7}`)
	return b.Bytes()
}

// BenchmarkModel measures the scanner on chat bodies: finding the model,
// and finding and rewriting it, which is what a fallback does. Package
// compare runs gjson and sjson on the same bodies.
func BenchmarkModel(b *testing.B) {
	for _, size := range []int{2 << 10, 100 << 10} {
		body := chatBody(size)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run("find/stdlib/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if m, ok := transport.FindModel(body); !ok || m == "" {
					b.Fatal("no model")
				}
			}
		})
		b.Run("find+rewrite/stdlib/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := transport.FindModel(body); !ok {
					b.Fatal("no model")
				}
				if _, ok := transport.RewriteModel(body, "mistralai/Mixtral-8x7B-Instruct-v0.1"); !ok {
					b.Fatal("no model")
				}
			}
		})
	}
}

func BenchmarkRequestModel(b *testing.B) {
	for _, size := range []int{2 << 10, 100 << 10} {
		body := chatBody(size)
		b.Run(fmt.Sprintf("GetBody/%dKB", size>>10), func(b *testing.B) {
			req, err := http.NewRequest(http.MethodPost, "http://x/", bytes.NewReader(body))
			require.NoError(b, err)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if m, _, _ := transport.RequestModel(req, 0); m == "" {
					b.Fatal("no model")
				}
			}
		})
	}
}

// BenchmarkRequestTokens is the token estimate of a chat request (its
// prompt's characters, its max_tokens), read through the GetBody
// http.NewRequest sets: what a token limiter costs each request, beside
// locating the model.
func BenchmarkRequestTokens(b *testing.B) {
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"chat/2KB", chatBody(2 << 10)},
		{"chat/100KB", chatBody(100 << 10)},
		{"document/100KB", longStringBody(100 << 10)},
		{"agent/100KB", agentBody(100 << 10)},
	} {
		b.Run(c.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodPost, "http://x/", bytes.NewReader(c.body))
			require.NoError(b, err)
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				if prompt, _ := transport.RequestTokens(req); prompt <= 1 {
					b.Fatal("no prompt")
				}
			}
		})
	}
}

// agentBody is an Anthropic request of about size bytes whose
// conversation is an agent's: tool_use blocks, whose input objects are
// counted whole, and the tool results handed back.
func agentBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"max_tokens":512,"messages":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":"assistant","content":[{"type":"tool_use","id":"toolu_%d","name":"edit_file",`+
			`"input":{"path":"src/file_%d.go","old":"return nil","new":"return fmt.Errorf(\"step %d: %%w\", err)","lines":[%d,%d]}}]},`+
			`{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_%d","content":"The file was edited: 1 line changed."}]}`,
			i, i, i, i, i+1, i)
	}
	b.WriteString(`],"model":"claude-sonnet-4-5","stream":true}`)
	return b.Bytes()
}

// longStringBody is a request whose bulk is one long string (a document to
// summarise), with the model after it.
func longStringBody(size int) []byte {
	doc := strings.Repeat("Lorem ipsum dolor sit amet, consectetur \\\"adipiscing\\\" elit. ", size/60)
	return []byte(`{"messages":[{"role":"user","content":"` + doc + `"}],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo"}`)
}

func BenchmarkModelLongString(b *testing.B) {
	body := longStringBody(100 << 10)
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := transport.FindModel(body); !ok {
				b.Fatal("no model")
			}
		}
	})
}

// TestFindModelEveryEscapedKey spells "model" with every subset of its
// letters escaped (\u006d, in either case of hex digit), and keys that
// escape their way to something else: FindModel finds the model under the
// first and only those, as encoding/json reads them.
func TestFindModelEveryEscapedKey(t *testing.T) {
	const word = "model"
	for mask := range 1 << len(word) {
		for _, upper := range []bool{false, true} {
			var key strings.Builder
			for i := range len(word) {
				if mask&(1<<i) == 0 {
					key.WriteByte(word[i])
					continue
				}
				if upper {
					fmt.Fprintf(&key, `\u%04X`, word[i])
				} else {
					fmt.Fprintf(&key, `\u%04x`, word[i])
				}
			}
			for _, pos := range []string{"first", "last"} {
				body := fmt.Sprintf(`{"%s":"m","stream":true}`, key.String())
				if pos == "last" {
					body = fmt.Sprintf(`{"stream":true,"%s":"m"}`, key.String())
				}
				m, ok := transport.FindModel([]byte(body))
				assert.True(t, ok, body)
				assert.Equal(t, "m", m, body)
			}
		}
	}
	for _, key := range []string{`mode\u006b`, `\u006dodels`, `Model`, `mod\u0065L`, `\u004dodel`, `max_tokens`, `m\u006fdel\u0020`} {
		body := fmt.Sprintf(`{"stream":true,"%s":"m"}`, key)
		m, ok := transport.FindModel([]byte(body))
		assert.False(t, ok, body)
		assert.Empty(t, m, body)
	}
}
