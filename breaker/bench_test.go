package breaker_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// BenchmarkBreaker measures the happy path: a closed breaker around a
// transport that answers 200 at once. "read-model" is the cost of finding
// the model alone (transport.RequestModel), which the breaker pays first;
// the breaker's own cost is the difference.
func BenchmarkBreaker(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	inner := transport.Func(func(*http.Request) (*http.Response, error) { return ok, nil })
	small := []byte(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}`)
	large := []byte(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"` +
		strings.Repeat("Say hello. ", 180) + `"}],"max_tokens":16}`)
	b.Run("breaker/no-body", func(b *testing.B) { // the breaker alone: no model to read
		rt := breaker.New()(inner)
		req, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rt.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, body := range [][]byte{small, large} {
		size := fmt.Sprintf("%dB", len(body))
		newReq := func(b *testing.B) *http.Request {
			req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", bytes.NewReader(body))
			require.NoError(b, err)
			return req
		}
		b.Run("read-model/"+size, func(b *testing.B) {
			req := newReq(b)
			b.ReportAllocs()
			for b.Loop() {
				if m, _, _ := transport.RequestModel(req, 0); m == "" {
					b.Fatal("no model")
				}
			}
		})
		b.Run("breaker/"+size, func(b *testing.B) {
			rt := breaker.New()(inner)
			req := newReq(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("breaker-parallel/"+size, func(b *testing.B) {
			rt := breaker.New()(inner)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := newReq(b)
				for pb.Next() {
					if _, err := rt.RoundTrip(req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Run("breaker-open", func(b *testing.B) {
		down := transport.Func(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 503, Body: http.NoBody}, nil
		})
		rt := breaker.New()(down)
		req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", bytes.NewReader(small))
		require.NoError(b, err)
		for range 5 {
			_, _ = rt.RoundTrip(req)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rt.RoundTrip(req); err == nil {
				b.Fatal("not open")
			}
		}
	})
}
