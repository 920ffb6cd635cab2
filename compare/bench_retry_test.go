package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// benchChatURL is where the benchmarks' requests go; nothing is sent.
const benchChatURL = "https://api.together.xyz/v1/chat/completions"

// rewindBody is a request body the benchmarks rewind instead of
// reallocating, so what they measure is the decorator, not the request.
type rewindBody struct{ *bytes.Reader }

func (rewindBody) Close() error { return nil }

// canned is the in-memory server: it answers 200 at once. The response is
// built fresh (one small allocation, in the bare baseline too) because
// failsafe-go rewrites the body field of the responses it returns.
var cannedHeader = http.Header{"Content-Type": {"application/json"}}

func canned(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: cannedHeader, Body: http.NoBody, Request: req}, nil
}

func BenchmarkRetryHappyPath(b *testing.B) {
	inner := transport.Func(canned)
	peers := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", inner},
		{"steady", retry.New()(inner)},
		{"retryablehttp", &retryablehttp.RoundTripper{Client: &retryablehttp.Client{
			HTTPClient:   &http.Client{Transport: inner},
			RetryWaitMin: retry.DefaultBaseDelay,
			RetryWaitMax: retry.DefaultMaxDelay,
			RetryMax:     4,
			CheckRetry:   retryablehttp.DefaultRetryPolicy,
			Backoff:      retryablehttp.DefaultBackoff,
		}}},
		{"failsafe", failsafehttp.NewRoundTripper(inner,
			failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(4).Build())},
	}
	payload := []byte(`{"model":"m","input":"the quick brown fox"}`)
	for _, peer := range peers {
		b.Run(peer.name+"/getbody", func(b *testing.B) {
			body := rewindBody{bytes.NewReader(payload)}
			req, err := http.NewRequest(http.MethodPost, benchChatURL, body)
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
			req, err := http.NewRequest(http.MethodGet, benchChatURL, nil)
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
