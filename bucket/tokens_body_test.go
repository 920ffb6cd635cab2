package bucket_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// conn is the body of a 101 answer, as net/http hands it: the connection
// itself, which the caller writes to as well as reads.
type conn struct {
	bytes.Buffer
	closed int
}

func (c *conn) Close() error { c.closed++; return nil }

// An upgraded connection (a WebSocket's 101) passes a token limiter as it
// came: its body is the connection, which the caller writes to, and which
// reports no usage. A wrapper that only reads would leave the caller (a
// WebSocket client, httputil.ReverseProxy) without a connection.
func TestKeyedKeepsAnUpgradedConnectionWritable(t *testing.T) {
	c := &conn{}
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{"Upgrade": {"websocket"}},
			Body: c, Request: req}, nil
	})
	// A token limit of a known rate: the limiter is open from the start.
	rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(bucket.TokenLimit{Rate: bucket.PerMinute(30000)}))(base)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://api.example.com/v1/realtime?model=m", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "the body of a 101 is %T, not the connection", resp.Body)
	_, err = io.WriteString(rwc, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", c.String(), "written to the connection")
	require.NoError(t, rwc.Close())
	assert.Equal(t, 1, c.closed)
}

// streamBody is a streamed answer's body: its bytes, then end (io.EOF or
// a failure), counting its Closes.
type streamBody struct {
	r      io.Reader
	end    error
	closed atomic.Int32
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = b.end
	}
	return n, err
}

func (b *streamBody) Close() error { b.closed.Add(1); return nil }

// The usage of a stream corrects its request's charge, and teaches the
// share of max_tokens the next is charged, only when the caller read it: a
// stream closed early, never read, reset, or whose first event is an error
// leaves the charge (its max_tokens) standing, and the next request is
// charged its max_tokens too, and waits for it. Each answer's body is closed exactly once, by the
// caller's Close, and nothing is left running (goleak).
func TestKeyedStreamedUsage(t *testing.T) {
	const events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":19}}\n\ndata: [DONE]\n\n"
	reset := errors.New("connection reset by peer")
	for _, tt := range []struct {
		name      string
		body      string
		end       error
		read      int // bytes the caller reads; -1: all
		corrected bool
	}{
		{"read to the end", events, io.EOF, -1, true},
		{"read through its usage", events, io.EOF, strings.Index(events, "data: [DONE]"), true},
		{"closed after the first event", events, io.EOF, strings.Index(events, "data: {\"choices\":[]"), false},
		{"never read", events, io.EOF, 0, false},
		{"reset before its usage", events[:strings.Index(events, "data: {\"choices\":[]")], reset, -1, false},
		{"its first event an error", "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n", io.EOF, -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var bodies []*streamBody
				base := transport.Func(func(req *http.Request) (*http.Response, error) {
					_ = req.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					b := &streamBody{r: strings.NewReader(events), end: io.EOF}
					if len(bodies) == 1 { // the answer under test; the first opens the limiter
						b = &streamBody{r: strings.NewReader(tt.body), end: tt.end}
					}
					bodies = append(bodies, b)
					return &http.Response{StatusCode: http.StatusOK, Request: req, Body: b,
						// 1,200 tokens a minute: a charge of max_tokens (1,000) takes 50 s to refill.
						Header: http.Header{"Content-Type": {"text/event-stream"}, "X-Ratelimit-Limit-Tokens": {"1200"}}}, nil
				})
				rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(base)
				send := func(read int, end error) {
					body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`
					req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
					require.NoError(t, err)
					resp, err := rt.RoundTrip(req)
					require.NoError(t, err)
					switch {
					case read < 0:
						_, err = io.Copy(io.Discard, resp.Body)
						if end == io.EOF {
							end = nil // io.Copy's end of the body
						}
						assert.Equal(t, end, err, "the stream's own end reaches the caller")
					case read > 0:
						_, err = io.ReadFull(resp.Body, make([]byte, read))
						require.NoError(t, err)
					}
					require.NoError(t, resp.Body.Close())
				}
				send(-1, io.EOF) // opens the token limiter
				send(tt.read, tt.end)
				start := time.Now()
				send(-1, io.EOF)
				waited := time.Since(start)
				if tt.corrected {
					// Taught a share of 3% of max_tokens, and given back what
					// it did not use: 31 tokens of the 981 given back.
					assert.Less(t, waited, time.Second, "the charge was corrected to the usage read")
				} else {
					assert.Greater(t, waited, 30*time.Second, "no usage was read: the charge stands")
				}
				mu.Lock()
				defer mu.Unlock()
				for i, b := range bodies {
					assert.Equal(t, int32(1), b.closed.Load(), "body %d closed once", i)
				}
			})
		})
	}
}

// A stream's usage, read after its round trip returned, reads nothing of
// the request's Info: a preset reuses that Info for its next request
// (transport.ReadAndSend). Here another goroutine empties the Info, as the
// next request would, while the caller reads the answer: the race
// detector sees any read of it. The usage still corrects the charge.
func TestKeyedUsageReadLateReadsNoInfo(t *testing.T) {
	const events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":19}}\n\ndata: [DONE]\n\n"
	synctest.Test(t, func(t *testing.T) {
		base := transport.Func(func(req *http.Request) (*http.Response, error) {
			_ = req.Body.Close()
			return &http.Response{StatusCode: http.StatusOK, Request: req, Body: io.NopCloser(strings.NewReader(events)),
				// 1,200 tokens a minute: a charge of max_tokens (1,000) takes 50 s to refill.
				Header: http.Header{"Content-Type": {"text/event-stream"}, "X-Ratelimit-Limit-Tokens": {"1200"}}}, nil
		})
		rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(base)
		stack, ok := rt.(transport.InfoRoundTripper)
		require.True(t, ok)
		send := func(reuse bool) time.Duration {
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
			require.NoError(t, err)
			send, info, err := transport.Read(req, 0)
			require.NoError(t, err)
			start := time.Now()
			resp, err := stack.RoundTripInfo(send, info)
			require.NoError(t, err)
			waited := time.Since(start)
			var wg sync.WaitGroup
			if reuse {
				wg.Go(func() { *info = transport.Info{} })
			}
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, events, string(b))
			require.NoError(t, resp.Body.Close())
			wg.Wait()
			return waited
		}
		send(false) // opens the token limiter
		send(true)
		send(true)
		assert.Less(t, send(true), time.Second, "the charges were corrected to the usage read")
	})
}

// gzipped is s compressed with gzip, as a server writes an answer to a
// request that asked for gzip itself (net/http then leaves the body
// compressed, with its Content-Encoding).
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := io.WriteString(zw, s)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

// The usage of an answer net/http left gzip-compressed (the request set
// Accept-Encoding: gzip itself) corrects its request's charge as an
// uncompressed one does, and the caller still reads the body as it came.
func TestAGzipCompressedAnswersUsageCorrectsTheCharge(t *testing.T) {
	const events = "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":19}}\n\ndata: [DONE]\n\n"
	synctest.Test(t, func(t *testing.T) {
		zipped := gzipped(t, events)
		base := transport.Func(func(req *http.Request) (*http.Response, error) {
			_ = req.Body.Close()
			return &http.Response{StatusCode: http.StatusOK, Request: req, Body: io.NopCloser(bytes.NewReader(zipped)),
				// 1,200 tokens a minute: a charge of max_tokens (1,000) takes 50 s to refill.
				Header: http.Header{"Content-Type": {"text/event-stream"}, "Content-Encoding": {"gzip"},
					"X-Ratelimit-Limit-Tokens": {"1200"}}}, nil
		})
		rt := bucket.Keyed(bucket.PerMinute(6000), bucket.WithTokenLimits(bucket.TokenLimit{Name: "tokens"}))(base)
		send := func() time.Duration {
			body := `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"max_tokens":1000}`
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Accept-Encoding", "gzip")
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			waited := time.Since(start)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, zipped, b, "the caller reads the body as it came")
			require.NoError(t, resp.Body.Close())
			return waited
		}
		send() // opens the token limiter
		send()
		assert.Less(t, send(), time.Second, "the charges were corrected to the usage read")
	})
}
