package transport_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// BenchmarkFallbackEvents is BenchmarkFallback's 2 KB happy path with an
// event hook set: the asked model serves, so nothing is emitted.
func BenchmarkFallbackEvents(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	inner := transport.Func(func(req *http.Request) (*http.Response, error) { return ok, nil })
	body := chatBody(2 << 10)
	req, err := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions", bytes.NewReader(body))
	require.NoError(b, err)
	rt := transport.Fallback(map[string][]string{"meta-llama/Llama-3.3-70B-Instruct-Turbo": {"small"}},
		transport.WithEvents(func(transport.Event) {}))(inner)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmit is the cost of reporting one event to a hook, with the
// recover that guards the caller.
func BenchmarkEmit(b *testing.B) {
	n := 0
	hook := transport.EventFunc(func(e transport.Event) { n += e.Attempt })
	b.ReportAllocs()
	for b.Loop() {
		hook.Emit(transport.Event{Kind: transport.EventDone, Endpoint: transport.EndpointChat, Attempt: 1, Status: 200})
	}
}
