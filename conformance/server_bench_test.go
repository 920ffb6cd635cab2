package conformance_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/steadyapi/steady/conformance"
)

// BenchmarkServerRoundTrip measures one in-memory request, the unit of
// every scenario run: what a workload of N requests costs on top of the
// middleware under test.
func BenchmarkServerRoundTrip(b *testing.B) {
	limited := map[string]conformance.Limit{
		conformance.Chat:       {RPM: 60, TPM: 1e6},
		conformance.Embeddings: {RPM: 60},
	}
	benches := []struct {
		name string
		cfg  conformance.Config
		path string
		body string
	}{
		{"chat", conformance.Config{}, "/v1/chat/completions", srvChatBody},
		{"chat-429", conformance.Config{Limits: limited}, "/v1/chat/completions", srvChatBody},
		{"chat-429-headers", conformance.Config{Limits: limited, Headers: conformance.HeaderEveryAnswer | conformance.HeaderOpenAI}, "/v1/chat/completions", srvChatBody},
		{"chat-429-nginx", conformance.Config{Limits: map[string]conformance.Limit{
			conformance.Chat: {RPM: 60, Algorithm: conformance.LeakyBucket, Burst: 1},
		}}, "/v1/chat/completions", srvChatBody},
		{"chat-429-sliding", conformance.Config{Limits: map[string]conformance.Limit{
			conformance.Chat: {RPM: 60, TPM: 1e6, Algorithm: conformance.SlidingLog},
		}, Headers: conformance.HeaderEveryAnswer}, "/v1/chat/completions", srvChatBody},
		{"chat-429-express-draft-8", conformance.Config{Limits: map[string]conformance.Limit{
			conformance.Chat: {RPM: 60, Algorithm: conformance.FixedWindow, FromFirstRequest: true},
		}, Headers: conformance.HeaderNoReset | conformance.HeaderRetryAfter | conformance.HeaderDraft8}, "/v1/chat/completions", srvChatBody},
		{"chat-stream", conformance.Config{}, "/v1/chat/completions", srvStreamBody},
		{"embeddings-20", conformance.Config{}, "/v1/embeddings",
			`{"model":"` + srvEmbedModel + `","input":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q","r","s","t"]}`},
		{"models", conformance.Config{}, "/v1/models", ""},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			srv := conformance.NewServer(bb.cfg)
			method := http.MethodPost
			if bb.body == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequest(method, "http://provider.test"+bb.path, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer k")
			body := []byte(bb.body)
			b.ReportAllocs()
			for b.Loop() {
				if len(body) > 0 {
					req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
				}
				resp, err := srv.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		})
	}
}
