package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/ratelimiter"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// benchMessagesBody is an Anthropic messages request of about size bytes,
// its model after its messages, as anthropic-sdk-go writes it.
func benchMessagesBody(size int) []byte {
	b := benchChatBody(size)
	return append([]byte(`{"max_tokens":512,`), b[len(`{"max_tokens":512,`):]...)
}

// BenchmarkPresets is what each preset adds to one request, beside what
// failsafe-go's retry, circuit breaker and rate limiter add, on the same
// in-memory base that answers 200 at once, for a 2 KB chat request whose
// model comes last (the whole body must be read to find it): run them in
// one go and compare each with "bare".
//
//	go test -run x -bench Presets -benchmem -count 10 ./compare/
//
// Each preset is given rates it never reaches, so nothing waits. "key" adds
// the API key to the request, as a client of the preset's NewClient needs;
// "own key": the request carries its own, as an SDK sends it. The
// request's GetBody hands back the same rewound reader, so that what is
// measured is the decorators, not the request (http.NewRequest's GetBody
// allocates a reader on each call).
func BenchmarkPresets(b *testing.B) {
	for _, c := range presetCases() {
		b.Run(c.name, func(b *testing.B) {
			req, body := c.request(b)
			b.ReportAllocs()
			for b.Loop() {
				body.Reset(c.body)
				req.Body = body
				resp, err := c.rt.RoundTrip(req)
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Fatal(err)
				}
				_ = resp.Body.Close()
			}
		})
	}
}

// presetCase is one stack of BenchmarkPresets, and the request it is sent.
type presetCase struct {
	name   string
	rt     http.RoundTripper
	url    string
	body   []byte
	header http.Header
}

// presetCases are BenchmarkPresets' stacks: bare, failsafe-go's, each
// preset's with its key and with the caller's own, and the parts of a
// preset.
func presetCases() []presetCase {
	inner := transport.Func(canned)
	base := transport.Base(inner)
	chat := benchChatBody(2 << 10)
	messages := benchMessagesBody(2 << 10)
	fs := func() http.RoundTripper {
		rp := failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(4).WithBackoff(time.Second, 30*time.Second).Build()
		cb := circuitbreaker.NewBuilder[*http.Response]().
			HandleIf(func(r *http.Response, err error) bool { return err != nil || (r != nil && r.StatusCode >= 500) }).
			WithFailureThresholdRatio(5, 10).WithDelay(30 * time.Second).Build()
		rl := ratelimiter.NewSmoothBuilder[*http.Response](1e9, time.Second).WithMaxWaitTime(time.Minute).Build()
		return failsafehttp.NewRoundTripper(inner, rp, cb, rl)
	}
	const fast = 1e12 // requests a minute: never reached
	return []presetCase{
		{"bare", inner, benchChatURL, chat, nil},
		{"failsafe-go", fs(), benchChatURL, chat, nil},
		// failsafe-go given the job a preset does with its key: the key
		// added to a copy of each request, as a careful caller would.
		{"failsafe-go/key", withKey(fs()), benchChatURL, chat, nil},
		{"together/key", together.NewTransport(inner, together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, chat, nil},
		{"together/own-key", together.NewTransport(inner, together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, chat, http.Header{"Authorization": {"Bearer own"}}},
		{"openai/key", openai.NewTransport(inner, openai.WithAPIKey("k"), openai.WithRate(openai.RouteChat, fast)),
			openai.DefaultBaseURL + "/chat/completions", chat, nil},
		{"openai/own-key", openai.NewTransport(inner, openai.WithAPIKey("k"), openai.WithRate(openai.RouteChat, fast)),
			openai.DefaultBaseURL + "/chat/completions", chat, http.Header{"Authorization": {"Bearer own"}}},
		{"anthropic/key", anthropic.NewTransport(inner, anthropic.WithAPIKey("k"), anthropic.WithRate(anthropic.RouteMessages, fast)),
			anthropic.DefaultBaseURL + "/messages", messages, nil},
		{"anthropic/own-key", anthropic.NewTransport(inner, anthropic.WithAPIKey("k"), anthropic.WithRate(anthropic.RouteMessages, fast)),
			anthropic.DefaultBaseURL + "/messages", messages, http.Header{"X-Api-Key": {"own"}, "Anthropic-Version": {anthropic.Version}}},
		// The parts of a preset, each alone under Inspect (which reads the
		// model once for the others), around a base marked as a preset
		// marks its own (transport.Base): subtract "parts/inspect" from each.
		{"parts/inspect", transport.Inspect()(base), benchChatURL, chat, nil},
		{"parts/inspect+retry", transport.Chain(base, transport.Inspect(), retry.New()), benchChatURL, chat, nil},
		{"parts/inspect+breaker", transport.Chain(base, transport.Inspect(), breaker.New()), benchChatURL, chat, nil},
		{"parts/inspect+limit", transport.Chain(base, transport.Inspect(),
			bucket.Limit(bucket.New(bucket.PerMinute(fast), bucket.WithBurst(fast)))), benchChatURL, chat, nil},
		{"parts/inspect+keyed", transport.Chain(base, transport.Inspect(), bucket.Keyed(bucket.PerMinute(fast))), benchChatURL, chat, nil},
	}
}

// withKey adds an API key to a copy of each request, with a copy of its
// header map, as a caller of failsafe-go (which adds none) would.
func withKey(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(r *http.Request) (*http.Response, error) {
		c := *r
		c.Header = r.Header.Clone()
		if c.Header == nil {
			c.Header = make(http.Header, 1)
		}
		c.Header.Set("Authorization", "Bearer k")
		return next.RoundTrip(&c)
	})
}

// request makes the case's request, and the body it is sent with, which
// the caller rewinds before each send. Its GetBody hands back one rewound
// reader, so that what is measured is the decorators, not the request
// (http.NewRequest's GetBody allocates a reader on each call).
func (c presetCase) request(tb testing.TB) (*http.Request, rewindBody) {
	body := rewindBody{bytes.NewReader(c.body)}
	again := rewindBody{bytes.NewReader(c.body)}
	req, err := http.NewRequest(http.MethodPost, c.url, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.ContentLength = int64(len(c.body))
	req.GetBody = func() (io.ReadCloser, error) { again.Reset(c.body); return again, nil }
	for k, v := range c.header {
		req.Header[k] = v
	}
	return req, body
}
