package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// modelServer answers by the model of each request: the status set for it,
// or 200 with the model echoed. It records every request body and every
// response it hands out.
type modelServer struct {
	mu        sync.Mutex
	status    map[string]int
	errs      map[string]error
	notFound  string // body of a 404
	bodies    [][]byte
	headers   []http.Header // each request's header, as it was sent
	responses []*trackedResponseBody
}

type trackedResponseBody struct {
	io.Reader
	mu     sync.Mutex
	read   int
	closed bool
}

func (b *trackedResponseBody) Read(p []byte) (int, error) {
	n, err := b.Reader.Read(p)
	b.mu.Lock()
	b.read += n
	b.mu.Unlock()
	return n, err
}

func (b *trackedResponseBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (s *modelServer) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	model, _ := transport.FindModel(body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errs[model]; err != nil { // failed fast: the body never reached the server
		return nil, err
	}
	s.bodies = append(s.bodies, body)
	s.headers = append(s.headers, req.Header.Clone())
	status := s.status[model]
	if status == 0 {
		status = http.StatusOK
	}
	text := fmt.Sprintf(`{"model":%q}`, model)
	switch status {
	case http.StatusNotFound:
		text = s.notFound
	case http.StatusServiceUnavailable, 529:
		text = `{"error":{"message":"The model is overloaded","type":"service_unavailable"}}`
	}
	rb := &trackedResponseBody{Reader: strings.NewReader(text)}
	s.responses = append(s.responses, rb)
	return &http.Response{StatusCode: status, Header: http.Header{}, Body: rb, Request: req}, nil
}

func (s *modelServer) models(t *testing.T) []string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var ms []string
	for _, b := range s.bodies {
		m, ok := transport.FindModel(b)
		require.True(t, ok)
		ms = append(ms, m)
	}
	return ms
}

const chatRequest = "{\n  \"messages\": [{\"role\": \"user\", \"content\": \"Say \\\"hi\\\"\"}],\n" +
	"  \"model\" : \"big\",  \"max_tokens\": 1.0e2, \"extra\": {\"model\": \"big\"}\n}"

func newChatRequest(t *testing.T, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer secret")
	return req
}

func TestFallbackMovesToTheNextModel(t *testing.T) {
	const modelNotFound = `{"error":{"message":"Unable to access model big.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`
	tests := []struct {
		name     string
		status   int
		err      error
		notFound string
		why      transport.FallbackReason
	}{
		{"503 overloaded", http.StatusServiceUnavailable, nil, "", transport.FallbackOverloaded},
		{"529 overloaded", 529, nil, "", transport.FallbackOverloaded},
		{"404 model_not_found", http.StatusNotFound, nil, modelNotFound, transport.FallbackNotFound},
		{"404 anthropic", http.StatusNotFound, nil, `{"type":"error","error":{"type":"not_found_error","message":"model: big"}}`, transport.FallbackNotFound},
		{"404 azure", http.StatusNotFound, nil, `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`, transport.FallbackNotFound},
		{"breaker open", 0, fmt.Errorf("breaker: big: %w", transport.ErrModelUnavailable), "", transport.FallbackUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &modelServer{status: map[string]int{"big": tt.status}, errs: map[string]error{"big": tt.err}, notFound: tt.notFound}
			var events []transport.Event
			rt := transport.Chain(srv, transport.Fallback(map[string][]string{"big": {"medium", "small"}},
				transport.WithEvents(func(e transport.Event) { events = append(events, e) }),
			))
			req := newChatRequest(t, chatRequest)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))
			assert.Equal(t, []transport.Event{{Kind: transport.EventFellBack, Endpoint: transport.EndpointChat,
				Model: "big", From: "big", To: "medium", Reason: string(tt.why)}}, events)

			want := []string{"big", "medium"}
			if tt.err != nil {
				want = []string{"medium"} // the breaker failed fast: big was never sent
			}
			assert.Equal(t, want, srv.models(t))
			last := srv.bodies[len(srv.bodies)-1]
			assert.Equal(t, strings.Replace(chatRequest, `"model" : "big"`, `"model" : "medium"`, 1), string(last),
				"only the top-level model changed, byte for byte")

			srv.mu.Lock()
			defer srv.mu.Unlock()
			if tt.err == nil {
				assert.True(t, srv.responses[0].closed, "the discarded answer is closed")
				assert.Equal(t, srv.responses[0].Reader.(*strings.Reader).Size(), int64(srv.responses[0].read), "and drained")
			}
			assert.Zero(t, srv.responses[len(srv.responses)-1].read, "the returned answer is not read")
		})
	}
}

// A request made WithoutFallback gets its own model's answer, whatever
// the reason to move on, and no other model is asked (nor paid for).
func TestFallbackWithoutFallbackAsksTheModelAlone(t *testing.T) {
	const modelNotFound = `{"error":{"message":"Unable to access model big.","type":"invalid_request_error","code":"model_not_found"}}`
	for _, tt := range []struct {
		name     string
		status   int
		err      error
		notFound string
	}{
		{"503 overloaded", http.StatusServiceUnavailable, nil, ""},
		{"404 model_not_found", http.StatusNotFound, nil, modelNotFound},
		{"breaker open", 0, fmt.Errorf("breaker: big: %w", transport.ErrModelUnavailable), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := &modelServer{status: map[string]int{"big": tt.status}, errs: map[string]error{"big": tt.err}, notFound: tt.notFound}
			var events []transport.Event
			rt := transport.Chain(srv, transport.Fallback(map[string][]string{"big": {"medium", "small"}},
				transport.WithEvents(func(e transport.Event) { events = append(events, e) })))
			req := newChatRequest(t, chatRequest)
			req = req.WithContext(transport.WithoutFallback(req.Context()))
			resp, err := rt.RoundTrip(req)
			if tt.err != nil {
				require.ErrorIs(t, err, transport.ErrModelUnavailable, "the breaker's error, as it is")
				assert.Empty(t, srv.models(t))
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.status, resp.StatusCode, "big's own answer")
				assert.Equal(t, "big", resp.Header.Get(transport.ModelHeader))
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				if tt.notFound != "" {
					assert.Equal(t, tt.notFound, string(body), "a 404's body whole, though it was read to judge it")
				}
				assert.Equal(t, []string{"big"}, srv.models(t), "no other model asked")
			}
			assert.Empty(t, events)
		})
	}
}

func TestFallbackChainExhausted(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503, "medium": 503, "small": 529}}
	rt := transport.Fallback(map[string][]string{"big": {"medium", "small"}})(srv)
	resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
	require.NoError(t, err)
	assert.Equal(t, 529, resp.StatusCode, "the last model's answer, as it is")
	assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
	assert.Equal(t, []string{"big", "medium", "small"}, srv.models(t))
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Contains(t, string(b), "overloaded")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	assert.True(t, srv.responses[0].closed)
	assert.True(t, srv.responses[1].closed)
	assert.False(t, srv.responses[2].closed)
}

// An empty alternate (a variable left unset) names no model: it is not
// sent to, and a chain left without alternates returns the model's own
// answer.
func TestFallbackSkipsEmptyAlternates(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503, "medium": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"", "medium", ""}, "medium": {""}})(srv)
	resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, []string{"big", "medium"}, srv.models(t), "only medium is tried after big")
	assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))

	req := newChatRequest(t, strings.Replace(chatRequest, `"model" : "big"`, `"model" : "medium"`, 1))
	resp, err = rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, []string{"big", "medium", "medium"}, srv.models(t), "medium's chain is no chain")
	assert.Empty(t, resp.Header.Get(transport.ModelHeader), "its answer is returned as it came")
}

func TestFallbackKeepsOtherAnswers(t *testing.T) {
	bigNotFound := `{"error":{"message":"` + strings.Repeat("x", 10<<10) + `","type":"not_found"}}` // longer than what is peeked
	tests := []struct {
		name     string
		status   int
		err      error
		notFound string
	}{
		{"200", http.StatusOK, nil, ""},
		{"429", http.StatusTooManyRequests, nil, ""},
		{"500", http.StatusInternalServerError, nil, ""},
		{"404 of something else", http.StatusNotFound, nil, `{"error":{"message":"no such file","type":"not_found"}}`},
		{"404 long", http.StatusNotFound, nil, bigNotFound},
		{"transport error", 0, errors.New("connection reset"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &modelServer{status: map[string]int{"big": tt.status}, errs: map[string]error{"big": tt.err}, notFound: tt.notFound}
			rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
			resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
			if tt.err != nil {
				assert.Empty(t, srv.models(t), "medium is not tried")
				assert.ErrorIs(t, err, tt.err)
				assert.Nil(t, resp)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []string{"big"}, srv.models(t))
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, "big", resp.Header.Get(transport.ModelHeader))
			if tt.status == http.StatusNotFound {
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				assert.Equal(t, tt.notFound, string(b), "the caller gets the whole 404 body")
				require.NoError(t, resp.Body.Close())
				srv.mu.Lock()
				assert.True(t, srv.responses[0].closed, "closing it closes the original")
				srv.mu.Unlock()
			}
		})
	}
}

func TestFallbackPassesBadInputThrough(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not JSON", `model=big`},
		{"no model", `{"messages":[]}`},
		{"model not a string", `{"model":["big"]}`},
		{"model without a chain", `{"model":"other"}`},
		{"nested model only", `{"x":{"model":"big"}}`},
		{"empty", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			inner := transport.Func(func(req *http.Request) (*http.Response, error) {
				got = req
				_ = req.Body.Close()
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody}, nil
			})
			rt := transport.Fallback(map[string][]string{"big": {"medium"}})(inner)
			req := newChatRequest(t, tt.body)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			assert.Same(t, req, got, "the same request object")
			assert.Equal(t, 503, resp.StatusCode)
			assert.Empty(t, resp.Header.Get(transport.ModelHeader))
		})
	}
	t.Run("no body", func(t *testing.T) {
		var got *http.Request
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			got = req
			return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
		})
		req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/models", nil)
		require.NoError(t, err)
		_, err = transport.Fallback(map[string][]string{"big": {"medium"}})(inner).RoundTrip(req)
		require.NoError(t, err)
		assert.Same(t, req, got)
	})
}

// A body without GetBody is read once, replayed to the first model and
// rewritten for the next.
func TestFallbackWithoutGetBody(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
	body := &modelBody{Reader: strings.NewReader(chatRequest)}
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", body)
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))
	assert.Equal(t, 1, body.closed, "the caller's body is closed")
	require.Len(t, srv.bodies, 2)
	assert.Equal(t, chatRequest, string(srv.bodies[0]))
	assert.Equal(t, strings.Replace(chatRequest, `"model" : "big"`, `"model" : "medium"`, 1), string(srv.bodies[1]))
}

// A GetBody that gives a body a few times and then none (nil, and no
// error) is not one to fall back with once it gives none: the answer in
// hand is returned, where a body spliced around nothing would panic when
// sent.
func TestFallbackWithAGetBodyThatGivesNoBody(t *testing.T) {
	for gives := range 5 { // the bodies GetBody gives before it gives none
		srv := &modelServer{status: map[string]int{"big": 503}}
		rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
		req := newChatRequest(t, chatRequest)
		calls := 0
		req.GetBody = func() (io.ReadCloser, error) {
			calls++
			if calls > gives {
				return nil, nil
			}
			return io.NopCloser(strings.NewReader(chatRequest)), nil
		}
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		if resp.StatusCode == http.StatusOK { // bodies enough to fall back with
			assert.Equal(t, []string{"big", "medium"}, srv.models(t))
			continue
		}
		assert.Less(t, gives, 4, "a GetBody that always gives a body falls back")
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "big's answer, as it is")
		assert.Equal(t, []string{"big"}, srv.models(t))
	}
}

func TestFallbackLeavesTheCallersRequestAlone(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
	req := newChatRequest(t, chatRequest)
	before := *req
	header := req.Header.Clone()
	_, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, header, req.Header)
	assert.Equal(t, before.ContentLength, req.ContentLength)
	assert.Equal(t, before.URL, req.URL)
	rc, err := req.GetBody()
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, chatRequest, string(b))
}

func TestFallbackGivesEachModelItsOwnIdempotencyKey(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503, "medium": 529}}
	rt := transport.Fallback(map[string][]string{"big": {"medium", "small"}})(srv)
	send := func(keyed bool) {
		req := newChatRequest(t, chatRequest)
		if keyed {
			req.Header.Set("Idempotency-Key", "stainless-go-retry-1234")
			req.Header.Set("X-Idempotency-Key", "x-1")
		}
		header := req.Header.Clone()
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
		assert.Equal(t, header, req.Header, "the caller's header is left alone")
	}
	send(true)
	send(true)
	send(false)
	require.Len(t, srv.headers, 9)
	assert.Equal(t, []string{"big", "medium", "small", "big", "medium", "small", "big", "medium", "small"}, srv.models(t))

	tag := regexp.MustCompile(`^-[0-9a-f]{16}$`)
	for _, k := range []string{"Idempotency-Key", "X-Idempotency-Key"} {
		orig := srv.headers[0].Get(k)
		require.NotEmpty(t, orig)
		seen := map[string]bool{}
		for i, h := range srv.headers[:3] {
			v := h.Get(k)
			assert.Len(t, h[k], 1)
			assert.False(t, seen[v], "%s of attempt %d is an attempt's own: %q", k, i, v)
			seen[v] = true
			if i == 0 {
				assert.Equal(t, orig, v, "the model asked keeps the request's key")
				continue
			}
			require.True(t, strings.HasPrefix(v, orig), "%q", v)
			assert.Regexp(t, tag, strings.TrimPrefix(v, orig))
		}
		// The same request falling back again sends the same keys.
		for i := range 3 {
			assert.Equal(t, srv.headers[i].Get(k), srv.headers[3+i].Get(k))
		}
	}
	// Every other header goes as it was.
	for _, h := range srv.headers[:3] {
		assert.Equal(t, "Bearer secret", h.Get("Authorization"))
	}
	// A request without a key gets none.
	for _, h := range srv.headers[6:] {
		assert.NotContains(t, h, "Idempotency-Key")
		assert.NotContains(t, h, "X-Idempotency-Key")
	}
}

func TestFallbackStopsWhenTheContextIsDone(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	resp, err := rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Equal(t, []string{"big"}, srv.models(t))
}

// A streaming request falls back the same way; the stream returned is not
// touched.
func TestFallbackStreaming(t *testing.T) {
	stream := &trackedResponseBody{Reader: strings.NewReader("data: {\"model\":\"medium\"}\n\ndata: [DONE]\n\n")}
	inner := transport.Func(func(req *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if m, _ := transport.FindModel(body); m == "big" {
			return &http.Response{StatusCode: 503, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}"))}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: stream}, nil
	})
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(inner)
	resp, err := rt.RoundTrip(newChatRequest(t, `{"model":"big","stream":true,"messages":[]}`))
	require.NoError(t, err)
	assert.Same(t, stream, resp.Body)
	assert.Zero(t, stream.read)
	assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))
}

func TestFallbackConcurrent(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	rt := transport.Fallback(map[string][]string{"big": {"medium"}})(srv)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
				if assert.NoError(t, err) {
					assert.Equal(t, "medium", resp.Header.Get(transport.ModelHeader))
				}
			}
		})
	}
	wg.Wait()
	assert.Len(t, srv.models(t), 8*20*2)
}

func ExampleFallback() {
	// A provider on which "big" is overloaded.
	provider := transport.Func(func(req *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		model, _ := transport.FindModel(body)
		if model == "big" {
			return &http.Response{StatusCode: 503, Body: http.NoBody}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(bytes.NewReader(body))}, nil
	})
	client := &http.Client{Transport: transport.Chain(provider,
		transport.Fallback(map[string][]string{"big": {"small"}}))}

	resp, err := client.Post("https://api.example.com/v1/chat/completions", "application/json",
		strings.NewReader(`{"model": "big", "messages": [{"role": "user", "content": "hi"}]}`))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	sent, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get(transport.ModelHeader))
	fmt.Println(string(sent))
	// Output:
	// 200 small
	// {"model": "small", "messages": [{"role": "user", "content": "hi"}]}
}

func ExampleRewriteModel() {
	body := []byte(`{"model": "big", "messages": [], "extra": {"model": "big"}}`)
	model, _ := transport.FindModel(body)
	rewritten, _ := transport.RewriteModel(body, "small")
	fmt.Println(model)
	fmt.Println(string(rewritten))
	// Output:
	// big
	// {"model": "small", "messages": [], "extra": {"model": "big"}}
}

func BenchmarkFallback(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	inner := transport.Func(func(req *http.Request) (*http.Response, error) { return ok, nil })
	for _, size := range []int{2 << 10, 100 << 10} {
		body := chatBody(size)
		req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", bytes.NewReader(body))
		require.NoError(b, err)
		b.Run(fmt.Sprintf("direct/%dKB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = inner.RoundTrip(req)
			}
		})
		b.Run(fmt.Sprintf("happy/%dKB", size>>10), func(b *testing.B) {
			rt := transport.Fallback(map[string][]string{"meta-llama/Llama-3.3-70B-Instruct-Turbo": {"small"}})(inner)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("fallback/%dKB", size>>10), func(b *testing.B) {
			over := transport.Func(func(req *http.Request) (*http.Response, error) {
				if req.GetBody != nil && req.ContentLength == int64(len(body)) {
					return &http.Response{StatusCode: 503, Body: http.NoBody}, nil
				}
				return ok, nil
			})
			rt := transport.Fallback(map[string][]string{"meta-llama/Llama-3.3-70B-Instruct-Turbo": {"small"}})(over)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestFallbackContract runs the contract suite on Fallback. With a chain
// from the suite's model to itself, a fallback resends the very bytes, so
// every rule holds; with a real alternate, the one rule a fallback breaks on
// purpose, that every attempt carries the caller's bytes, is the only one.
func TestFallbackContract(t *testing.T) {
	const model = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	t.Run("same model", func(t *testing.T) {
		conformance.TestMiddleware(t, transport.Fallback(map[string][]string{model: {model}}))
	})
	t.Run("alternate", func(t *testing.T) {
		report := conformance.CheckMiddleware(t, transport.Fallback(map[string][]string{
			model: {"mistralai/Mixtral-8x7B-Instruct-v0.1"},
		}))
		assert.Equal(t, []conformance.Rule{conformance.RuleBodyReplayed}, report.Failed())
	})
}

// sentAt is one request a scripted base answered: when, and for which
// model.
type sentAt struct {
	at    time.Duration
	model string
}

// overloadedFor answers 503 with Retry-After: after for the first n
// requests, 200 then, and records when each came and for which model.
func overloadedFor(n int, after string, start time.Time, sent *[]sentAt) transport.Func {
	return func(req *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		model, _ := transport.FindModel(body)
		*sent = append(*sent, sentAt{time.Since(start), model})
		if len(*sent) <= n {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: req,
				Header: http.Header{"Retry-After": {after}}, Body: io.NopCloser(strings.NewReader(`{"error":{"type":"overloaded"}}`))}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Request: req, Header: http.Header{}, Body: http.NoBody}, nil
	}
}

// A model that is its own alternate gets the same request again only once
// the wait its overloaded answer asked for has passed, as a retry would;
// another model gets it at once.
func TestFallbackToTheSameModelWaitsTheWaitItAskedFor(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chain []string
		want  []sentAt
	}{
		{"same model", []string{"big"}, []sentAt{{0, "big"}, {3 * time.Second, "big"}}},
		{"another model", []string{"small"}, []sentAt{{0, "big"}, {0, "small"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sent []sentAt
				rt := transport.Fallback(map[string][]string{"big": tc.chain})(overloadedFor(1, "3", time.Now(), &sent))
				resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, tc.want, sent)
			})
		})
	}
}

// A wait the same model cannot be given (longer than a minute, or past the
// request's deadline) skips it for the next alternate, sent at once; with
// none, the overloaded answer is returned.
func TestFallbackSkipsTheSameModelWhenItsWaitCannotBeGiven(t *testing.T) {
	for _, tc := range []struct {
		name     string
		after    string
		deadline time.Duration
	}{
		{"over a minute", "120", 0},
		{"past the deadline", "3", 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				if tc.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.deadline)
					defer cancel()
				}
				var sent []sentAt
				rt := transport.Fallback(map[string][]string{"big": {"big", "small"}})(overloadedFor(1, tc.after, time.Now(), &sent))
				resp, err := rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, []sentAt{{0, "big"}, {0, "small"}}, sent)

				sent = nil
				rt = transport.Fallback(map[string][]string{"big": {"big"}})(overloadedFor(1, tc.after, time.Now(), &sent))
				resp, err = rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Equal(t, []sentAt{{0, "big"}}, sent)
			})
		})
	}
}

// A request cancelled while it waits to go to the same model again ends
// then, with the context's error, and nothing more is sent.
func TestFallbackWaitingForTheSameModelEndsWithTheContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		var sent []sentAt
		start := time.Now()
		rt := transport.Fallback(map[string][]string{"big": {"big"}})(overloadedFor(1, "30", start, &sent))
		resp, err := rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
		require.ErrorIs(t, err, context.Canceled)
		assert.Nil(t, resp)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, []sentAt{{0, "big"}}, sent)
	})
}

// A request that ends while the overloaded answer it leaves is drained (a
// body that stalls) ends then, with the context's error: the next model is
// not asked, nor told of as asked.
func TestFallbackDoesNotMoveOnAfterTheRequestEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		var models []string
		var stalled []*io.PipeWriter
		defer func() {
			for _, w := range stalled {
				_ = w.Close()
			}
		}()
		base := transport.Func(func(req *http.Request) (*http.Response, error) {
			body, _ := io.ReadAll(req.Body)
			_ = req.Body.Close()
			model, _ := transport.FindModel(body)
			models = append(models, model)
			pr, pw := io.Pipe()
			stalled = append(stalled, pw)
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: req, Header: http.Header{}, Body: pr}, nil
		})
		var events []transport.Event
		rt := transport.Fallback(map[string][]string{"big": {"small"}},
			transport.WithEvents(func(e transport.Event) { events = append(events, e) }))(base)
		start := time.Now()
		resp, err := rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
		require.ErrorIs(t, err, context.Canceled)
		assert.Nil(t, resp)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.Equal(t, []string{"big"}, models)
		assert.Empty(t, events)
	})
}
