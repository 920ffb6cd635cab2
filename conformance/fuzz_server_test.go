package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/steadyapi/steady/conformance"
)

// FuzzServerRequest sends the simulator any method, path, key and body. It
// must answer every request with a response or an error, never both and
// never a panic, with a status net/http could send and, for an error
// status, a Together error body that parses.
func FuzzServerRequest(f *testing.F) {
	for _, seed := range []struct{ method, path, auth, body string }{
		{"POST", "/v1/chat/completions", "Bearer k", `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}],"max_tokens":16}`},
		{"POST", "/v1/chat/completions", "Bearer k", `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}],"stream":true}`},
		{"POST", "/v1/completions", "", `{"model":"mistralai/Mixtral-8x7B-Instruct-v0.1","prompt":["a","b"],"max_tokens":-3}`},
		{"POST", "/v1/embeddings", "Bearer k", `{"model":"BAAI/bge-large-en-v1.5","input":["a",{"text":"b"}]}`},
		{"POST", "/v1/images/generations", "Bearer k", `{"model":"black-forest-labs/FLUX.1-schnell","prompt":"a cat","n":1e9}`},
		{"POST", "/v1/fine-tunes", "Bearer k", `{"model":"x","training_file":"f"}`},
		{"GET", "/v1/fine-tunes/ft-1", "Bearer k", ``},
		{"POST", "/v1/batches", "Bearer k", `{"input_file_id":"f","endpoint":"/v1/chat/completions"}`},
		{"GET", "/v1/models", "", ``},
		{"DELETE", "/v1/chat/completions", "", `{}`},
		{"POST", "/v1/chat/completions", "Bearer", `{"model":null,"messages":"x"}`},
	} {
		f.Add(seed.method, seed.path, seed.auth, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, method, path, auth string, body []byte) {
		srv := conformance.NewServer(conformance.Config{
			Limits: map[string]conformance.Limit{
				conformance.Chat:        {RPM: 60, TPM: 1000},
				conformance.Embeddings:  {RPM: 60, Dynamic: true, Span: conformance.SpanInUse, Algorithm: conformance.FixedWindow, FromFirstRequest: true},
				conformance.Completions: {RPM: 60, TPM: 100, Algorithm: conformance.LeakyBucket, Burst: 1},
				conformance.Images:      {RPM: 6, TPM: 50, Algorithm: conformance.SlidingLog, Window: 10 * time.Second},
			},
			Headers: conformance.HeaderEveryAnswer | conformance.HeaderRetryAfter | conformance.HeaderOpenAI | conformance.HeaderAnthropic |
				conformance.HeaderLegacy | conformance.HeaderDraft6 | conformance.HeaderDraft7 | conformance.HeaderDraft8,
		})
		req, err := http.NewRequestWithContext(context.Background(), method, "http://sim.test/", bytes.NewReader(body))
		if err != nil {
			return // not a method net/http would send
		}
		req.URL.Path = path
		if auth != "" {
			req.Header["Authorization"] = []string{auth}
		}
		resp, err := srv.RoundTrip(req)
		if (resp == nil) == (err == nil) {
			t.Fatalf("response %v and error %v", resp, err)
		}
		if err != nil {
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode < 100 || resp.StatusCode > 599 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		got, rerr := io.ReadAll(resp.Body)
		if rerr != nil {
			t.Fatalf("reading the answer: %v", rerr)
		}
		if resp.StatusCode >= 400 {
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if json.Unmarshal(got, &e) != nil || e.Error.Message == "" {
				t.Fatalf("status %d with body %q", resp.StatusCode, got)
			}
		}
	})
}
