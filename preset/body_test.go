package preset_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
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

// An error page of a CDN or a proxy in front of the API, in HTML, gives
// its title as the message, not the markup that precedes it; a body of
// text is cut on a character, never inside one, and bytes that are not
// text are not passed on to the logs.
func TestANonJSONErrorBodyGivesAClearMessage(t *testing.T) {
	const page = "<!DOCTYPE html>\n" +
		"<!--[if lt IE 7]> <html class=\"no-js ie6 oldie\" lang=\"en-US\"> <![endif]-->\n" +
		"<!--[if IE 7]>    <html class=\"no-js ie7 oldie\" lang=\"en-US\"> <![endif]-->\n" +
		"<!--[if IE 8]>    <html class=\"no-js ie8 oldie\" lang=\"en-US\"> <![endif]-->\n" +
		"<!--[if gt IE 8]><!--> <html class=\"no-js\" lang=\"en-US\"> <!--<![endif]-->\n" +
		"<head>\n\n\n<TITLE>api.openai.com | 502:\n  Bad gateway &amp; more</TITLE>\n<meta charset=\"UTF-8\" />\n" +
		"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=UTF-8\" />\n</head><body>...</body></html>"
	for _, tc := range []struct{ body, want string }{
		{page, "api.openai.com | 502: Bad gateway & more"},
		{"a" + strings.Repeat("é", 400), "a" + strings.Repeat("é", 255)},
		{"upstream \xff\xfe reset", "upstream \uFFFD reset"},
		{"<html><body>no title</body></html>", "<html><body>no title</body></html>"},
	} {
		resp := &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body))}
		var api *preset.APIError
		require.ErrorAs(t, preset.CheckResponse(resp, "openai"), &api)
		assert.Equal(t, tc.want, api.Message)
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, tc.body, string(b), "the body is whole for the caller")
	}
}

// A quota answer whose connection fails after the body said so is not
// retried either: what was read is enough to know no wait cures it.
func TestACutQuotaAnswerIsNotRetried(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`
	synctest.Test(t, func(t *testing.T) {
		requireQuotaNotRetried(t, func(req *http.Request) *http.Response {
			body := io.MultiReader(strings.NewReader(quota[:90]), iotestErr{io.ErrUnexpectedEOF})
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(body), Request: req}
		})
	})
}

// A quota answer from a base transport that names no request with it (a
// test double, a cache, a recording) is not retried either: the rule that
// reads the body does not need the request to know what the body says.
func TestAQuotaAnswerThatNamesNoRequestIsNotRetried(t *testing.T) {
	const quota = `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`
	synctest.Test(t, func(t *testing.T) {
		body := requireQuotaNotRetried(t, func(*http.Request) *http.Response {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(quota))}
		})
		assert.Equal(t, quota, body, "the body is whole for the caller")
	})
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// stalledBody is a body whose server sent its first bytes and then
// stalls: a read after those blocks until the body is closed.
type stalledBody struct {
	head   io.Reader
	closed chan struct{}
	once   sync.Once
}

func newStalledBody(head string) *stalledBody {
	return &stalledBody{head: strings.NewReader(head), closed: make(chan struct{})}
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if n, _ := b.head.Read(p); n > 0 {
		return n, nil
	}
	<-b.closed
	return 0, errors.New("read on closed body")
}

func (b *stalledBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// A 429 whose server sent the start of its body and then stalls does not
// hold the request until its deadline: the body is looked at for a quota
// error for DrainWait at most, as Drain reads one, and the request is
// retried after the server's wait, as any other 429 is.
func TestAStalled429BodyDoesNotHoldTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := 0
		rt := preset.New(groq, transport.Func(func(req *http.Request) (*http.Response, error) {
			_ = req.Body.Close()
			n++
			if n > 1 {
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{}`)), Request: req}, nil
			}
			body := newStalledBody(`{"error":{"message":"Rate limit reached`)
			// As net/http does, the request's end closes its answer's body.
			context.AfterFunc(req.Context(), func() { _ = body.Close() })
			h := http.Header{"Retry-After": {"1"}}
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: body, Request: req}, nil
		}), preset.WithAPIKey("k"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, groq.BaseURL+"/chat/completions", strings.NewReader(`{"model":"llama"}`))
		require.NoError(t, err)
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the 429 is retried")
		assert.Equal(t, 2, n)
		assert.Less(t, time.Since(start), 5*time.Second, "the stalled body held the request")
	})
}

// A request that ends (its deadline, its cancellation) while the body of
// its 429 stalls, a body that is not net/http's (nothing else closes it at
// the request's end), is not held past its end to look for a quota error:
// the body is closed then, and the request returns.
func TestAStalled429BodyIsNotReadPastTheRequestsEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(t *testing.T) context.Context
	}{
		{"deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}},
		{"canceled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			t.Cleanup(cancel)
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				body := newStalledBody(`{"error":{"message":"Rate limit reached`)
				rt := preset.New(groq, transport.Func(func(req *http.Request) (*http.Response, error) {
					_ = req.Body.Close()
					h := http.Header{"Retry-After-Ms": {"50"}} // a wait that fits the deadline
					return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: body, Request: req}, nil
				}), preset.WithAPIKey("k"))
				req, err := http.NewRequestWithContext(tc.ctx(t), http.MethodPost, groq.BaseURL+"/chat/completions", strings.NewReader(`{"model":"llama"}`))
				require.NoError(t, err)
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				if err == nil {
					_ = resp.Body.Close()
				}
				assert.Equal(t, 100*time.Millisecond, time.Since(start), "returned at the request's end")
				select {
				case <-body.closed:
				default:
					t.Error("the stalled body was not closed")
				}
			})
		})
	}
}

// requireQuotaNotRetried sends a chat request through a preset whose base
// answers every request with answer(req), an insufficient_quota: the
// answer is returned after one request, and CheckResponse names it. It
// returns the answer's body, as the caller reads it then.
func requireQuotaNotRetried(t *testing.T, answer func(req *http.Request) *http.Response) string {
	t.Helper()
	n := 0
	rt := preset.New(groq, transport.Func(func(req *http.Request) (*http.Response, error) {
		_ = req.Body.Close()
		n++
		return answer(req), nil
	}), preset.WithAPIKey("k"))
	req, err := http.NewRequest(http.MethodPost, groq.BaseURL+"/chat/completions", strings.NewReader(`{"model":"llama"}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 1, n, "a quota answer is not retried")
	assert.ErrorIs(t, preset.CheckResponse(resp, "groq"), preset.ErrQuotaExceeded)
	b, _ := io.ReadAll(resp.Body) // a body cut short is the caller's as it came
	return string(b)
}

// A JSON error body of none of the shapes CheckResponse reads (FastAPI's
// and vLLM's {"detail": ...}, a list of "errors") gave an APIError with no
// message at all: the server's words are now kept, the body's first 512
// bytes written compact, and an echoed key is removed from them, written
// plainly or with \u escapes, whole even where the cut falls inside it.
func TestAnErrorBodyOfAnotherJSONShapeKeepsTheServersWords(t *testing.T) {
	const key = "sk-abcdefgh123456"
	long := strings.Repeat("x", 2000)
	straddle := strings.Repeat("y", 512-len(`{"detail":"`)-4)
	for _, tc := range []struct {
		status     int
		body, want string
		kind       error
	}{
		{503, `{"detail":"model overloaded"}`, `{"detail":"model overloaded"}`, preset.ErrOverloaded},
		{400, `{"errors":[{"message":"x"}]}`, `{"errors":[{"message":"x"}]}`, nil},
		{500, `{"error":{"detail":"worker died"}}`, `{"error":{"detail":"worker died"}}`, nil},
		{422, "{\n  \"detail\": [{\"loc\": [\"body\", \"max_tokens\"], \"msg\": \"caf\\u00e9 \\u003c 1\"}],\n  \"retry\": 1.50\n}",
			`{"detail":[{"loc":["body","max_tokens"],"msg":"café < 1"}],"retry":1.50}`, nil},
		{401, `{"detail":"invalid key ` + key + `"}`, `{"detail":"invalid key [redacted]"}`, preset.ErrUnauthorized},
		{401, `{"detail":"invalid key \u0073k-\u0061bcdefgh123456"}`, `{"detail":"invalid key [redacted]"}`, preset.ErrUnauthorized},
		{500, `{"detail":"` + long + `"}`, `{"detail":"` + long[:512-len(`{"detail":"`)], nil},
		{403, `{"detail":"` + straddle + key + `"}`, `{"detail":"` + straddle + `[red`, preset.ErrUnauthorized},
		// A body of a shape that is read keeps what it says, even with no
		// message.
		{529, `{"type":"error","error":{"type":"overloaded_error"}}`, ``, preset.ErrOverloaded},
	} {
		req, err := http.NewRequest(http.MethodPost, "https://x/v1/chat/completions", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(tc.body)), Request: req}
		err = preset.CheckResponse(resp, "vllm")
		var api *preset.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, tc.want, api.Message, tc.body)
		assert.LessOrEqual(t, len(api.Message), 512)
		assert.NotContains(t, err.Error(), "sk-abc")
		if tc.kind != nil {
			assert.ErrorIs(t, err, tc.kind)
		}
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, tc.body, string(b), "the body is whole for the caller")
	}
}

// A body that is not JSON is cut to 512 bytes too, once the key is out of
// it: a key the cut fell in, with fewer than 8 of its characters before
// the cut, left them in the message.
func TestAKeyTheCutFallsInIsRemovedWhole(t *testing.T) {
	const key = "sk-abcdefgh123456"
	body := "upstream error " + strings.Repeat("z", 512-len("upstream error ")-5) + key + " rejected"
	req, err := http.NewRequest(http.MethodPost, "https://x/v1/chat/completions", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp := &http.Response{StatusCode: http.StatusBadGateway, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
	var api *preset.APIError
	require.ErrorAs(t, preset.CheckResponse(resp, "vllm"), &api)
	assert.Equal(t, body[:507]+"[reda", api.Message)
}
