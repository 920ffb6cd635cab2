package retry_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// rewindBody is a request body the benchmarks rewind instead of
// reallocating, so what they measure is the decorator, not the request.
type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// canned is the in-memory server: it answers 200 at once. The response is
// built fresh (one small allocation, in the bare baseline too), as the
// side-by-side run with the peers (package compare) needs it.
var cannedHeader = http.Header{"Content-Type": {"application/json"}}

func canned(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: cannedHeader, Body: http.NoBody, Request: req}, nil
}

func BenchmarkHappyPath(b *testing.B) {
	inner := transport.Func(canned)
	peers := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", inner},
		{"steady", retry.New()(inner)},
	}
	payload := []byte(`{"model":"m","input":"the quick brown fox"}`)
	for _, peer := range peers {
		b.Run(peer.name+"/getbody", func(b *testing.B) {
			body := rewindBody{bytes.NewReader(payload)}
			req, err := http.NewRequest(http.MethodPost, chatURL, body)
			if err != nil {
				b.Fatal(err)
			}
			req.GetBody = func() (io.ReadCloser, error) { body.Reset(payload); return body, nil }
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(payload)
				req.Body = body
				resp, err := peer.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
			}
		})
		b.Run(peer.name+"/nobody", func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, chatURL, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				resp, err := peer.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
			}
		})
	}
}

// BenchmarkHappyPathParallel shows the retry budget's counter under
// contention: every request through one decorator adds to the same slot.
func BenchmarkHappyPathParallel(b *testing.B) {
	rt := retry.New()(transport.Func(canned))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest(http.MethodGet, chatURL, nil)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Error(err)
				return
			}
			_ = resp.Body.Close()
		}
	})
}
