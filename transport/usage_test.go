package transport_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestWatchUsage(t *testing.T) {
	tests := []struct {
		name string
		body string
		want transport.Usage
		ok   bool
	}{
		{"openai", `{"id":"x","choices":[{"message":{"content":"the \"usage\": {\"prompt_tokens\": 99}"}}],` +
			`"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":3}}}`,
			transport.Usage{Input: 9, Output: 12}, true},
		{"openai stream", "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n" +
			"data: {\"choices\":[],\"usage\": {\"prompt_tokens\": 5, \"completion_tokens\": 7}}\n\ndata: [DONE]\n\n",
			transport.Usage{Input: 5, Output: 7}, true},
		{"anthropic stream", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"cache_read_input_tokens\":4,\"output_tokens\":1}}}\n\n" +
			"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n" +
			"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n" +
			"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
			transport.Usage{Input: 29, Output: 15}, true},
		{"embeddings", `{"data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`, transport.Usage{Input: 8}, true},
		{"none", `{"error":{"message":"usage"}}`, transport.Usage{}, false},
		{"not an object", `{"usage":"lots"}`, transport.Usage{}, false},
		{"too large", `{"usage":{"prompt_tokens":1,"x":"` + strings.Repeat("a", 4<<10) + `"}}`, transport.Usage{}, false},
		// A key ending in an escaped quote and usage (a tool's input, as a
		// model wrote it) is another key; an escaped backslash before a
		// key's quote escapes nothing.
		{"a key ending in \\\"usage", `{"content":[{"type":"tool_use","input":{"x\"usage":{"output_tokens":999}}}]}`,
			transport.Usage{}, false},
		{"a key ending in \\\"usage, then usage", `{"content":[{"input":{"x\"usage":{"output_tokens":999}}}],"usage":{"input_tokens":3,"output_tokens":4}}`,
			transport.Usage{Input: 3, Output: 4}, true},
		{"a value ending in a backslash", `{"id":"a\\","usage":{"input_tokens":3,"output_tokens":4}}`,
			transport.Usage{Input: 3, Output: 4}, true},
	}
	for _, tt := range tests {
		for _, cut := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+"/"+cut, func(t *testing.T) {
				var r io.Reader = strings.NewReader(tt.body)
				if cut != "whole" {
					r = iotest.OneByteReader(r)
				}
				calls := 0
				var got transport.Usage
				var ok bool
				body := transport.WatchUsage(io.NopCloser(r), func(u transport.Usage, found bool) {
					calls++
					got, ok = u, found
				})
				b, err := io.ReadAll(body)
				require.NoError(t, err)
				assert.Equal(t, tt.body, string(b), "the body passes through unchanged")
				require.NoError(t, body.Close())
				assert.Equal(t, 1, calls, "done once, at the end")
				assert.Equal(t, tt.ok, ok)
				assert.Equal(t, tt.want, got)
			})
		}
	}
}

// A body the caller closes unread reports nothing: the watcher never reads
// on its own.
func TestWatchUsageNeverReadsItself(t *testing.T) {
	src := &trackedBody{Reader: strings.NewReader(`{"usage":{"prompt_tokens":1}}`)}
	var ok, called bool
	body := transport.WatchUsage(src, func(_ transport.Usage, found bool) { called, ok = true, found })
	require.NoError(t, body.Close())
	assert.True(t, called)
	assert.False(t, ok)
	assert.Equal(t, 1, src.closed)
	rest, _ := io.ReadAll(src.Reader)
	assert.Len(t, rest, len(`{"usage":{"prompt_tokens":1}}`), "nothing was read")
}

// splitReader gives its bytes in the pieces of cuts.
type splitReader struct{ pieces []string }

func (r *splitReader) Read(p []byte) (int, error) {
	for len(r.pieces) > 0 && r.pieces[0] == "" {
		r.pieces = r.pieces[1:]
	}
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0])
	r.pieces[0] = r.pieces[0][n:]
	return n, nil
}

// FuzzWatchUsage: however a body is cut into reads, the usage found is the
// same, and the body passes through unchanged.
func FuzzWatchUsage(f *testing.F) {
	f.Add(`{"usage":{"prompt_tokens":9,"completion_tokens":12}}`, uint8(3), uint8(9))
	f.Add("data: {\"usage\":null}\n\ndata: {\"usage\":{\"input_tokens\":2,\"output_tokens\":3}}\n\n", uint8(1), uint8(40))
	f.Fuzz(func(t *testing.T, body string, a, b uint8) {
		watch := func(pieces ...string) (transport.Usage, bool, string) {
			var u transport.Usage
			var ok bool
			w := transport.WatchUsage(io.NopCloser(&splitReader{pieces: pieces}), func(got transport.Usage, found bool) { u, ok = got, found })
			out, err := io.ReadAll(w)
			require.NoError(t, err)
			return u, ok, string(out)
		}
		i, j := int(a)%(len(body)+1), int(b)%(len(body)+1)
		i, j = min(i, j), max(i, j)
		u1, ok1, out1 := watch(body)
		u2, ok2, out2 := watch(body[:i], body[i:j], body[j:])
		require.Equal(t, body, out1)
		require.Equal(t, body, out2)
		require.Equal(t, ok1, ok2)
		require.Equal(t, u1, u2)
		// And in many small pieces, of 1 to 9 bytes in turn, as a stream
		// arrives: a key or an escape may be cut anywhere, again and again.
		var pieces []string
		for k, rest := 0, body; rest != ""; k++ {
			n := 1 + int(a)%9
			if k%2 == 1 {
				n = 1 + int(b)%9
			}
			n = min(n, len(rest))
			pieces, rest = append(pieces, rest[:n]), rest[n:]
		}
		u3, ok3, out3 := watch(pieces...)
		require.Equal(t, body, out3)
		require.Equal(t, ok1, ok3, "in pieces %q", pieces)
		require.Equal(t, u1, u3, "in pieces %q", pieces)
	})
}

// TestWatchUsageCountsDoNotOverflow: counts an answer reports, each of
// them valid, whose sum does not fit an int64 make a usage that is as
// large as it can be, not a negative one that a limiter would take for a
// refund.
func TestWatchUsageCountsDoNotOverflow(t *testing.T) {
	const most = math.MaxInt64
	body := `{"usage":{"input_tokens":9223372036854775807,"cache_creation_input_tokens":9223372036854775807,` +
		`"cache_read_input_tokens":1,"output_tokens":9223372036854775807}}`
	var got transport.Usage
	var ok bool
	w := transport.WatchUsage(io.NopCloser(strings.NewReader(body)), func(u transport.Usage, found bool) { got, ok = u, found })
	_, err := io.ReadAll(w)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, transport.Usage{Input: most, Output: most}, got)
	assert.Equal(t, int64(most), got.Total(), "the total is as large as it can be, not negative")
	assert.Equal(t, int64(7), transport.Usage{Input: 3, Output: 4}.Total())
}

// An answer left gzip-compressed is read uncompressed for its usage, and
// handed to the caller as it came; one half read reports the usage of
// what was read; an answer in an encoding steady does not read reports
// none.
func TestWatchResponseUsageReadsAGzipCompressedAnswer(t *testing.T) {
	const body = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":9}}\n\ndata: [DONE]\n\n"
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := io.WriteString(zw, body)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	zipped := b.Bytes()

	for _, tt := range []struct {
		name     string
		encoding string
		body     []byte
		read     int // bytes read before Close; -1: all
		want     transport.Usage
		ok       bool
	}{
		{"gzip", "gzip", zipped, -1, transport.Usage{Input: 5, Output: 9}, true},
		{"x-gzip", " X-Gzip ", zipped, -1, transport.Usage{Input: 5, Output: 9}, true},
		{"identity", "identity", []byte(body), -1, transport.Usage{Input: 5, Output: 9}, true},
		{"no encoding", "", []byte(body), -1, transport.Usage{Input: 5, Output: 9}, true},
		{"half read", "gzip", zipped, len(zipped) * 3 / 4, transport.Usage{Input: 5, Output: 7}, true},
		{"never read", "gzip", zipped, 0, transport.Usage{}, false},
		{"brotli", "br", []byte(body), -1, transport.Usage{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := &http.Response{Header: http.Header{}, Body: io.NopCloser(iotest.OneByteReader(bytes.NewReader(tt.body)))}
			if tt.encoding != "" {
				resp.Header.Set("Content-Encoding", tt.encoding)
			}
			calls := 0
			var got transport.Usage
			var ok bool
			rc := transport.WatchResponseUsage(resp, func(u transport.Usage, found bool) { calls++; got, ok = u, found })
			var read []byte
			if tt.read < 0 {
				read, err = io.ReadAll(rc)
				require.NoError(t, err)
				assert.Equal(t, tt.body, read, "the caller reads the body as it came")
			} else {
				_, err = io.ReadFull(rc, make([]byte, tt.read))
				require.NoError(t, err)
			}
			require.NoError(t, rc.Close())
			assert.Equal(t, 1, calls)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}
