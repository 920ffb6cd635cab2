package breaker_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// BenchmarkBreakerEvents is BenchmarkBreaker's 119-byte happy path with an
// event hook set: a closed breaker emits nothing, so it costs the same.
func BenchmarkBreakerEvents(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	inner := transport.Func(func(*http.Request) (*http.Response, error) { return ok, nil })
	body := []byte(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}`)
	rt := breaker.New(breaker.WithEvents(func(transport.Event) {}))(inner)
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", bytes.NewReader(body))
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
