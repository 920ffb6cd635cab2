package bucket_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// BenchmarkLimitEvents is BenchmarkLimit with an event hook set: the clock
// is read once more, and a request that did not wait emits nothing.
func BenchmarkLimitEvents(b *testing.B) {
	h := http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"9"}, "X-Ratelimit-Reset": {"0.1"}}
	resp := &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody}
	base := transport.Func(func(*http.Request) (*http.Response, error) { return resp, nil })
	events := 0
	rt := bucket.Limit(bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate)),
		bucket.WithEvents(func(transport.Event) { events++ }))(base)
	req, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
