package retry_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// BenchmarkHappyPathEvents is the happy path with an event hook: one
// EventDone per request, built on the stack.
func BenchmarkHappyPathEvents(b *testing.B) {
	events := 0
	rt := retry.New(retry.WithEvents(func(transport.Event) { events++ }))(transport.Func(canned))
	req, err := http.NewRequest(http.MethodGet, chatURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if events == 0 {
		b.Fatal("no event")
	}
}
