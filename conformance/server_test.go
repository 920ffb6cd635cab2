package conformance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

func TestServerChat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		r := srvChat(t, srv, "k")
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		var c struct {
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Message struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"message"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				PromptTokens int `json:"prompt_tokens"`
				TotalTokens  int `json:"total_tokens"`
			} `json:"usage"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &c))
		assert.Equal(t, "chat.completion", c.Object)
		assert.Equal(t, srvChatModel, c.Model, "the model echoes the request's")
		require.Len(t, c.Choices, 1)
		assert.Equal(t, "assistant", c.Choices[0].Message.Role)
		assert.NotEmpty(t, c.Choices[0].Message.Content)
		assert.Equal(t, "stop", c.Choices[0].FinishReason)
		assert.Equal(t, 2, c.Usage.PromptTokens, `"hello": 5 characters, 2 tokens`)

		// Completions, and content given as parts.
		r = srvDo(t, srv, http.MethodPost, "/v1/completions", "k", `{"model":"`+srvChatModel+`","prompt":"Once upon"}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Contains(t, r.body, `"object":"text_completion"`)
		r = srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k",
			`{"model":"`+srvChatModel+`","messages":[{"role":"user","content":[{"type":"text","text":"hi \"there\"\n"}]}]}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.True(t, json.Valid([]byte(r.body)))
	})
}

func TestServerEmbeddings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		type embeddings struct {
			Object string `json:"object"`
			Model  string `json:"model"`
			Data   []struct {
				Object    string    `json:"object"`
				Index     int       `json:"index"`
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
		}
		for _, tt := range []struct {
			input string
			n     int
		}{{`"one"`, 1}, {`["one","two","one"]`, 3}} {
			r := srvDo(t, srv, http.MethodPost, "/v1/embeddings", "k", `{"model":"`+srvEmbedModel+`","input":`+tt.input+`}`)
			require.Equal(t, http.StatusOK, r.status, r.body)
			var e embeddings
			require.NoError(t, json.Unmarshal([]byte(r.body), &e))
			assert.Equal(t, "list", e.Object)
			assert.Equal(t, srvEmbedModel, e.Model)
			require.Len(t, e.Data, tt.n)
			for i, d := range e.Data {
				assert.Equal(t, i, d.Index)
				assert.Equal(t, "embedding", d.Object)
				assert.Len(t, d.Embedding, 8)
			}
			if tt.n == 3 {
				assert.Equal(t, e.Data[0].Embedding, e.Data[2].Embedding, "the same text, the same vector")
				assert.NotEqual(t, e.Data[0].Embedding, e.Data[1].Embedding)
			}
		}
	})
}

func TestServerRouting(t *testing.T) {
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
		allow                    string // the Allow header of a 405
	}{
		{"unknown model", http.MethodPost, "/v1/chat/completions", `{"model":"nope/none","messages":[]}`, 404, "model_not_found", ""},
		{"no model", http.MethodPost, "/v1/embeddings", `{"input":"x"}`, 404, "model_not_found", ""},
		{"unknown path", http.MethodPost, "/v1/nothing", `{}`, 404, "not_found", ""},
		{"wrong method", http.MethodGet, "/v1/chat/completions", "", 405, "method_not_allowed", "POST"},
		{"wrong method for a job", http.MethodPost, "/v1/batches/b-1", "{}", 405, "method_not_allowed", "GET"},
		{"wrong method for jobs", http.MethodDelete, "/v1/fine-tunes", "", 405, "method_not_allowed", "GET, POST"},
		{"bad json", http.MethodPost, "/v1/chat/completions", `{"model":`, 400, "invalid_json", ""},
		{"empty body", http.MethodPost, "/v1/chat/completions", "", 400, "invalid_json", ""},
		{"unknown job", http.MethodGet, "/v1/fine-tunes/ft-9", "", 404, "not_found", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(conformance.Config{})
				r := srvDo(t, srv, tt.method, tt.path, "k", tt.body)
				assert.Equal(t, tt.status, r.status, r.body)
				assert.Equal(t, "invalid_request_error", srvErrorType(t, r.body))
				assert.Contains(t, r.body, `"code":"`+tt.code+`"`)
				assert.Equal(t, tt.allow, r.header.Get("Allow"))
				assert.Equal(t, conformance.Stats{Arrivals: 1, Other: 1}, srv.Stats())
			})
		})
	}
}

func TestServerModels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		r := srvDo(t, srv, http.MethodGet, "/v1/models", "k", "")
		require.Equal(t, http.StatusOK, r.status)
		var models []struct{ ID, Object, Type string }
		require.NoError(t, json.Unmarshal([]byte(r.body), &models))
		types := map[string]string{}
		for _, m := range models {
			assert.Equal(t, "model", m.Object)
			types[m.ID] = m.Type
		}
		assert.Len(t, models, len(conformance.DefaultModels()))
		assert.Equal(t, "chat", types[srvChatModel])
		assert.Equal(t, "chat", types["mistralai/Mixtral-8x7B-Instruct-v0.1"])
		assert.Equal(t, "embedding", types[srvEmbedModel])
		assert.Equal(t, "embedding", types["togethercomputer/m2-bert-80M-8k-retrieval"])

		// A configured list replaces the default one.
		srv = conformance.NewServer(conformance.Config{Models: []string{"acme/tiny"}})
		assert.Equal(t, `[{"id":"acme/tiny","object":"model","created":0,"type":"chat","organization":"acme"}]`,
			srvDo(t, srv, http.MethodGet, "/v1/models", "", "").body)
		assert.Equal(t, http.StatusNotFound, srvChat(t, srv, "k").status)
	})
}

func TestServerArrivals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 60}))
		srvChat(t, srv, "alice")
		srvChat(t, srv, "alice")
		time.Sleep(1500 * time.Millisecond)
		srvChat(t, srv, "alice")
		srvDo(t, srv, http.MethodPost, "/v1/embeddings", "", `{"model":"`+srvEmbedModel+`","input":"x"}`)

		got := srv.Arrivals()
		require.Len(t, got, 4)
		hash := got[0].BodyHash
		assert.NotZero(t, hash)
		want := []conformance.Arrival{
			{At: 0, Endpoint: conformance.Chat, Model: srvChatModel, Key: "alice", Status: 200, BodyHash: hash, Attempt: 1},
			{At: 0, Endpoint: conformance.Chat, Model: srvChatModel, Key: "alice", Status: 429, BodyHash: hash, Attempt: 2},
			{At: 1500 * time.Millisecond, Endpoint: conformance.Chat, Model: srvChatModel, Key: "alice", Status: 200, BodyHash: hash, Attempt: 3},
			{At: 1500 * time.Millisecond, Endpoint: conformance.Embeddings, Model: srvEmbedModel, Status: 200, BodyHash: got[3].BodyHash, Attempt: 1},
		}
		assert.Equal(t, want, got)
		assert.NotEqual(t, hash, got[3].BodyHash)
		assert.Equal(t, conformance.Stats{Arrivals: 4, OK: 3, TooMany: 1}, srv.Stats())

		got[0].Key = "changed"
		assert.Equal(t, "alice", srv.Arrivals()[0].Key, "Arrivals returns a copy")
	})
}

// What a client names, its key and its model, is kept for every arrival and
// in the per-key (per-model) limits: a client sending 20 MB names made a
// provider hold 2.5 GB after 80 requests. Long names are kept as a bounded
// digest that still tells them apart.
func TestServerBoundsTheNamesItKeeps(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{
		Dialect: conformance.DialectOpenAI, // limits per key and model
		Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 6000}},
	})
	const n, size = 16, 1 << 20
	long := func(i int, c string) string { return fmt.Sprint(i) + strings.Repeat(c, size) }
	var heap runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&heap)
	before := heap.HeapAlloc
	for i := range n {
		body := `{"model":"` + long(i, "m") + `","messages":[{"role":"user","content":"hi"}]}`
		key := strings.Repeat("k", size) + fmt.Sprint(i) // apart only at their ends
		r := srvDo(t, srv, http.MethodPost, "/v1/chat/completions", key, body)
		require.Equal(t, http.StatusNotFound, r.status, "an unknown model")
		assert.Contains(t, r.body, long(i, "m"), "the answer names the model it was sent")
	}
	runtime.GC()
	runtime.ReadMemStats(&heap)
	kept := int64(heap.HeapAlloc) - int64(before)
	assert.Less(t, kept, int64(n*size/4), "bytes the server kept after %d requests naming a %d-byte key and model", n, size)

	got := srv.Arrivals()
	require.Len(t, got, n)
	assert.LessOrEqual(t, len(got[0].Model), 256)
	assert.LessOrEqual(t, len(got[0].Key), 256)
	assert.NotEqual(t, got[0].Model, got[1].Model, "two long names stay apart")
	assert.NotEqual(t, got[0].Key, got[1].Key, "two long keys stay apart, even with a common beginning")
	runtime.KeepAlive(srv)
}

// srvCloseCounter is a request body that records whether it was closed.
type srvCloseCounter struct {
	io.Reader
	closed int
}

func (c *srvCloseCounter) Close() error { c.closed++; return nil }

func TestServerRoundTripContract(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Latency: time.Second})

		// The body is read and closed, and the request is left as it was.
		body := &srvCloseCounter{Reader: strings.NewReader(srvChatBody)}
		req, err := http.NewRequest(http.MethodPost, "http://provider.test/v1/chat/completions", body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer k")
		before := req.Header.Clone()
		start := time.Now()
		resp, err := srv.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, time.Second, time.Since(start), "the latency, in virtual time")
		assert.Equal(t, 1, body.closed)
		assert.Equal(t, before, req.Header)
		assert.Same(t, req, resp.Request)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, resp.ContentLength, int64(len(b)))
		require.NoError(t, resp.Body.Close())

		// A context cancelled during the latency ends the wait with its error.
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start = time.Now()
		resp, err = srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))

		// A context already done is not sent.
		cancel()
		body = &srvCloseCounter{Reader: strings.NewReader(srvChatBody)}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, "http://provider.test/v1/chat/completions", body)
		require.NoError(t, err)
		resp, err = srv.RoundTrip(req)
		assert.Nil(t, resp)
		assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded), err)
		assert.Equal(t, 1, body.closed, "closed even when not sent")
		assert.Equal(t, 2, srv.Stats().Arrivals)
	})
}

func TestServerConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// 600 RPM is 10 a second; 20 callers ask once a second each.
		srv := conformance.NewServer(srvChatLimit(conformance.Limit{RPM: 600}))
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				for range 50 {
					resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
					if assert.NoError(t, err) {
						_, _ = io.Copy(io.Discard, resp.Body)
						_ = resp.Body.Close()
					}
					time.Sleep(time.Second)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, conformance.Stats{Arrivals: 1000, OK: 500, TooMany: 500}, srv.Stats())
		arrivals := srv.Arrivals()
		require.Len(t, arrivals, 1000)
		for i, a := range arrivals {
			assert.Equal(t, i+1, a.Attempt, "one body, counted in order")
		}
	})
}
