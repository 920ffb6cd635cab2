package transport_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// readCounter counts the reads of a request body without GetBody.
type readCounter struct {
	io.Reader
	reads  atomic.Int64
	closed atomic.Int64
}

func (b *readCounter) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	b.reads.Add(int64(n))
	return n, err
}

func (b *readCounter) Close() error { b.closed.Add(1); return nil }

// seen records what the base transport got.
type seen struct {
	info  *transport.Info
	body  []byte
	model string
	req   *http.Request
}

func recorder(got *[]seen) http.RoundTripper {
	return transport.Func(func(r *http.Request) (*http.Response, error) {
		s := seen{info: transport.InfoOf(r), req: r}
		s.model, _, _ = transport.RequestModel(r, 0)
		if r.Body != nil {
			s.body, _ = io.ReadAll(r.Body)
			_ = r.Body.Close()
		}
		*got = append(*got, s)
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
}

func TestInspectReadsTheRequestOnce(t *testing.T) {
	const body = `{"messages":[{"role":"user","content":"hi"}],"model":"m","max_tokens":5}`
	t.Run("GetBody", func(t *testing.T) {
		var got []seen
		rt := transport.Inspect()(recorder(&got))
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
		require.NoError(t, err)
		_, err = rt.RoundTrip(req)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.NotNil(t, got[0].info)
		assert.Equal(t, "m", got[0].info.Model)
		assert.Equal(t, transport.EndpointChat, got[0].info.Endpoint)
		assert.Equal(t, "m", got[0].model)
		assert.Equal(t, body, string(got[0].body))
		assert.Nil(t, transport.InfoOf(req), "the caller's request is not changed")
	})
	t.Run("no GetBody: buffered once, passed on with GetBody", func(t *testing.T) {
		var got []seen
		rt := transport.Inspect()(retry.New()(recorder(&got)))
		b := &readCounter{Reader: strings.NewReader(body)}
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", b)
		require.NoError(t, err)
		req.ContentLength = -1
		_, err = rt.RoundTrip(req)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Equal(t, int64(len(body)), b.reads.Load(), "read once, through every layer")
		assert.Equal(t, int64(1), b.closed.Load())
		assert.Equal(t, "m", got[0].info.Model)
		assert.Equal(t, body, string(got[0].body))
		require.NotNil(t, got[0].req.GetBody)
		assert.Equal(t, int64(len(body)), got[0].req.ContentLength)
	})
	t.Run("larger than the limit: sent once, whole, and not buffered again", func(t *testing.T) {
		var got []seen
		rt := transport.Inspect(transport.WithBodyLimit(16))(retry.New()(recorder(&got)))
		b := &readCounter{Reader: strings.NewReader(body)}
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", b)
		require.NoError(t, err)
		req.ContentLength = -1
		_, err = rt.RoundTrip(req)
		require.NoError(t, err)
		require.Len(t, got, 1)
		assert.Empty(t, got[0].model)
		assert.Equal(t, body, string(got[0].body), "nothing of the body is lost")
		assert.Equal(t, int64(len(body)), b.reads.Load())
		assert.Equal(t, int64(1), b.closed.Load())
	})
	t.Run("a read error: nothing is sent", func(t *testing.T) {
		var got []seen
		rt := transport.Inspect()(recorder(&got))
		boom := errors.New("disk on fire")
		b := &readCounter{Reader: io.MultiReader(strings.NewReader(`{"mo`), errReader{boom})}
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", b)
		require.NoError(t, err)
		_, err = rt.RoundTrip(req)
		assert.ErrorIs(t, err, boom)
		assert.Empty(t, got)
		assert.Equal(t, int64(1), b.closed.Load())
	})
}

// A request made anew with an inspected request's context is not
// described by its Info: only copies of the inspected request are.
func TestInfoDescribesOnlyTheInspectedRequest(t *testing.T) {
	var side *transport.Info
	var sideModel string
	rt := transport.Inspect()(transport.Func(func(r *http.Request) (*http.Response, error) {
		other, err := http.NewRequestWithContext(r.Context(), http.MethodPost, "https://api.example.com/v1/embeddings",
			strings.NewReader(`{"model":"other","input":"x"}`))
		require.NoError(t, err)
		side = transport.InfoOf(other)
		sideModel, _, _ = transport.RequestModel(other, 0)
		c := *r
		assert.NotNil(t, transport.InfoOf(&c), "a shallow copy keeps it")
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	_, err = rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Nil(t, side)
	assert.Equal(t, "other", sideModel)
}

// The estimate is made once per inspected request, however many decorators
// ask for it.
func TestEstimateTokensIsKept(t *testing.T) {
	calls := 0
	body := `{"model":"m","messages":[{"role":"user","content":"12345678"}],"max_tokens":10}`
	var estimates []int
	rt := transport.Inspect()(transport.Func(func(r *http.Request) (*http.Response, error) {
		for range 3 {
			estimates = append(estimates, transport.EstimateTokens(r))
		}
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	getBody := req.GetBody
	req.GetBody = func() (io.ReadCloser, error) { calls++; return getBody() }
	_, err = rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, []int{12, 12, 12}, estimates, "8 characters are 2 tokens, plus max_tokens")
	assert.Equal(t, 2, calls, "one read for the model, one for the estimate")
}

// heapAllocated returns the bytes allocated while f ran.
func heapAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A 30 MiB in-memory body is read through GetBody for its model, for its
// estimate and for a fallback's rewrite without a copy of it being made.
func TestALargeInMemoryBodyIsNotCopied(t *testing.T) {
	big := append([]byte(`{"messages":[{"role":"user","content":"`), bytes.Repeat([]byte("lorem ipsum "), 30<<20/12)...)
	big = append(big, `"}],"model":"big"}`...)
	served := 0
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		n, _ := io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		served++
		status := 503
		if served > 1 {
			status = 200
			assert.Equal(t, r.ContentLength, n)
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody}, nil
	})
	rt := transport.Chain(base, transport.Inspect(), transport.Fallback(map[string][]string{"big": {"small"}}))
	alloc := heapAllocated(func() {
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", bytes.NewReader(big))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
		assert.Equal(t, transport.EstimateTokens(req), (len(big)-len(`{"messages":[{"role":"user","content":"`)-len(`"}],"model":"big"}`)+3)/4)
	})
	t.Logf("allocated %d bytes for a %d-byte body", alloc, len(big))
	assert.Less(t, alloc, uint64(1<<20), "far less than the body")
}

// Shared, an answer's headers are read once for every limiter that asks
// at the same instant; a new answer, a copy of it with other headers, or
// another instant is read anew, and an Info not asked to share, or a nil
// one, reads each time.
func TestInfoSignalsReadsAnAnswerOnce(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	_, info, err := transport.Read(req, 0)
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	resp := &http.Response{StatusCode: 200, Header: http.Header{"X-Ratelimit-Remaining-Requests": {"7"}}}
	assert.Equal(t, 7.0, info.Signals(resp, now).Requests.Remaining)
	resp.Header["X-Ratelimit-Remaining-Requests"] = []string{"8"}
	assert.Equal(t, 8.0, info.Signals(resp, now).Requests.Remaining, "not shared: read each time")
	resp.Header["X-Ratelimit-Remaining-Requests"] = []string{"7"}
	info.ShareSignals()
	info.ShareSignals()
	assert.Equal(t, 7.0, info.Signals(resp, now).Requests.Remaining)
	resp.Header["X-Ratelimit-Remaining-Requests"] = []string{"3"} // changed in place, against the contract
	assert.Equal(t, 7.0, info.Signals(resp, now).Requests.Remaining, "the same answer at the same instant is not read again")
	assert.Equal(t, 3.0, info.Signals(resp, now.Add(time.Millisecond)).Requests.Remaining, "another instant is")
	view := *resp
	view.Header = http.Header{"X-Ratelimit-Remaining-Requests": {"1"}}
	assert.Equal(t, 1.0, info.Signals(&view, now.Add(time.Millisecond)).Requests.Remaining, "so is a copy")
	var none *transport.Info
	none.ShareSignals()
	assert.Equal(t, 3.0, none.Signals(resp, now).Requests.Remaining)
	resp.Header["X-Ratelimit-Remaining-Requests"] = []string{"2"}
	assert.Equal(t, 2.0, none.Signals(resp, now).Requests.Remaining, "a nil Info reads each time")
}

// Info.Window is ParseWindow of the three headers named, for any Info: one
// that shares signals reads Anthropic's windows once with the others, and
// reads a new answer, or the same at a new instant, anew.
func TestInfoWindow(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	answer := func(input, output string) *http.Response {
		h := http.Header{}
		h.Set("Anthropic-Ratelimit-Input-Tokens-Limit", input)
		h.Set("Anthropic-Ratelimit-Input-Tokens-Remaining", "900")
		h.Set("Anthropic-Ratelimit-Input-Tokens-Reset", "2026-12-01T03:00:10Z")
		h.Set("Anthropic-Ratelimit-Output-Tokens-Limit", output)
		h.Set("Anthropic-Ratelimit-Output-Tokens-Reset", "2026-12-01T03:00:20Z")
		h.Set("X-Own-Limit", "50")
		h.Set("X-Own-Remaining", "5")
		return &http.Response{StatusCode: http.StatusOK, Header: h}
	}
	in := []string{"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"}
	out := []string{"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"}
	own := []string{"X-Own-Limit", "X-Own-Remaining", "X-Own-Reset"}
	mixed := []string{in[0], out[1], in[2]} // not one window: read as named
	want := func(resp *http.Response, at time.Time, k []string) transport.Window {
		return transport.ParseWindow(resp.Header[k[0]], resp.Header[k[1]], resp.Header[k[2]], at)
	}

	shared := new(transport.Info)
	shared.ShareSignals()
	for _, info := range []*transport.Info{nil, new(transport.Info), shared} {
		first, second := answer("1000", "200"), answer("3000", "400")
		for _, c := range []struct {
			resp *http.Response
			at   time.Time
		}{{first, now}, {first, now}, {second, now}, {second, now.Add(time.Second)}, {first, now.Add(time.Second)}} {
			for _, k := range [][]string{in, out, own, mixed} {
				assert.Equal(t, want(c.resp, c.at, k), info.Window(c.resp, c.at, k[0], k[1], k[2]), "%v", k)
			}
			assert.Equal(t, transport.ParseSignals(c.resp.Header, c.at), info.Signals(c.resp, c.at))
		}
	}
	w := shared.Window(answer("1000", "200"), now, in[0], in[1], in[2])
	assert.Equal(t, transport.Window{Limit: 1000, Remaining: 900, Reset: 10 * time.Second, Period: -1}, w)
}

func TestInfoRetryVerdictIsTheLastAnswerRead(t *testing.T) {
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	_, info, err := transport.Read(req, 0)
	require.NoError(t, err)
	answer := func(v string) *http.Response {
		return &http.Response{StatusCode: 503, Header: http.Header{"X-Should-Retry": {v}}}
	}
	read, other := answer("false"), answer("true")
	// Not read yet: the header.
	assert.Equal(t, transport.VerdictDontRetry, info.RetryVerdict(read))
	info.Signals(read, time.Now())
	read.Header.Set("X-Should-Retry", "true") // as no decorator may: shows what was read
	assert.Equal(t, transport.VerdictDontRetry, info.RetryVerdict(read))
	// Another answer, and none, are not the one read.
	assert.Equal(t, transport.VerdictRetry, info.RetryVerdict(other))
	assert.Equal(t, transport.VerdictNone, info.RetryVerdict(nil))
	// A nil Info reads the header.
	var none *transport.Info
	assert.Equal(t, transport.VerdictRetry, none.RetryVerdict(read))
	// The latest answer read is the one remembered.
	info.Signals(other, time.Now())
	assert.Equal(t, transport.VerdictRetry, info.RetryVerdict(read))
}

// The instructions of a request to OpenAI's Responses API are its system
// prompt, counted as Anthropic's "system" is: a long one is most of what
// the request costs against the token limit.
func TestRequestTokensCountsTheResponsesAPIsInstructions(t *testing.T) {
	body := `{"model":"gpt-5","instructions":"` + strings.Repeat("x", 4000) + `","input":"` + strings.Repeat("y", 40) + `","max_output_tokens":7}`
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/responses", strings.NewReader(body))
	require.NoError(t, err)
	prompt, output := transport.RequestTokens(req)
	assert.Equal(t, 1010, prompt, "the instructions' 4,000 characters and the input's 40, over four")
	assert.Equal(t, 7, output)
}

// The output of a tool a request to OpenAI's Responses API hands back
// (an input item of type function_call_output) is prompt text, as the
// content of a chat request's tool message is: an agent's requests carry
// most of their tokens there.
func TestRequestTokensCountsTheResponsesAPIsToolOutputs(t *testing.T) {
	body := `{"model":"gpt-5","input":[{"role":"user","content":"` + strings.Repeat("y", 40) + `"},` +
		`{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},` +
		`{"type":"function_call_output","call_id":"c","output":"` + strings.Repeat("x", 4000) + `"}],"max_output_tokens":7}`
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/responses", strings.NewReader(body))
	require.NoError(t, err)
	prompt, output := transport.RequestTokens(req)
	assert.Equal(t, 1011, prompt, "the tool output's 4,000 characters, the message's 40 and the arguments' 2, over four")
	assert.Equal(t, 7, output)
}

// The arguments of the tool calls an assistant message of a chat request
// hands back are prompt text, as its content is: the server counts them,
// and an agent's requests carry many (a file written, a query).
func TestRequestTokensCountsTheArgumentsOfAChatRequestsToolCalls(t *testing.T) {
	args := `{\"code\":\"` + strings.Repeat("x", 3989) + `\"}` // 4,000 characters, each escape one
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"` + strings.Repeat("y", 40) + `"},` +
		`{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"` + args + `"}}]}],` +
		`"max_completion_tokens":7}`
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	prompt, output := transport.RequestTokens(req)
	assert.Equal(t, 1010, prompt, "the arguments' 4,000 characters and the message's 40, over four")
	assert.Equal(t, 7, output)
}

// The arguments of a function call a request to OpenAI's Responses API
// hands back (an input item of type function_call), and the input of a
// custom tool's call (custom_tool_call, a string), are prompt text.
func TestRequestTokensCountsTheArgumentsOfTheResponsesAPIsFunctionCalls(t *testing.T) {
	args := `{\"code\":\"` + strings.Repeat("x", 3989) + `\"}` // 4,000 characters, each escape one
	body := `{"model":"gpt-5","input":[{"role":"user","content":"` + strings.Repeat("y", 40) + `"},` +
		`{"type":"function_call","call_id":"c","name":"f","arguments":"` + args + `"},` +
		`{"type":"function_call_output","call_id":"c","output":"ok"},` +
		`{"type":"custom_tool_call","call_id":"d","name":"g","input":"` + strings.Repeat("z", 2000) + `"}],"max_output_tokens":7}`
	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/responses", strings.NewReader(body))
	require.NoError(t, err)
	prompt, output := transport.RequestTokens(req)
	assert.Equal(t, 1511, prompt, "the arguments' 4,000 characters, the custom input's 2,000, the message's 40 and the output's 2, over four")
	assert.Equal(t, 7, output)
}

// The input of a tool_use block Anthropic's request hands back, an object,
// is prompt text: each of its strings, keys too, is counted.
func TestRequestTokensCountsTheInputOfAnthropicsToolUse(t *testing.T) {
	body := `{"model":"claude-sonnet-4-5","max_tokens":7,"messages":[{"role":"user","content":"` + strings.Repeat("y", 40) + `"},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"write_file",` +
		`"input":{"path":"a.go","code":"` + strings.Repeat("x", 3972) + `","lines":[1,2],"opts":{"mode":"new"}}}]}]}`
	req, err := http.NewRequest(http.MethodPost, "https://api.anthropic.com/v1/messages", strings.NewReader(body))
	require.NoError(t, err)
	prompt, output := transport.RequestTokens(req)
	// path, a.go, code, the code's 3,972, lines, opts, mode, new: 4,000.
	assert.Equal(t, 1010, prompt, "the input's 4,000 characters of strings and the message's 40, over four")
	assert.Equal(t, 7, output)
}
