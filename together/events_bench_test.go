package together_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"testing"

	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// BenchmarkTransportHappyPath measures the whole preset around a transport
// that answers 200 at once, for a chat request well under its rate: with
// no hook, with an event hook, and with the slog adapter at Info, where
// the happy path's events (Debug) are not written.
func BenchmarkTransportHappyPath(b *testing.B) {
	ok := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	inner := transport.Func(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return ok, nil
	})
	body := []byte(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}`)
	for _, c := range []struct {
		name string
		opts []together.Option
	}{
		{"quiet", nil},
		{"events", []together.Option{together.WithEvents(func(transport.Event) {})}},
		{"slog-info", []together.Option{together.WithEvents(slogobserve.New(slog.New(slog.NewJSONHandler(io.Discard, nil))))}},
	} {
		b.Run(c.name, func(b *testing.B) {
			opts := append([]together.Option{together.WithAPIKey("k"), together.WithRate(together.RouteChat, 1e12)}, c.opts...)
			rt := together.NewTransport(inner, opts...)
			req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", bytes.NewReader(body))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
