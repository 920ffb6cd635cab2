package main

import (
	"bytes"
	"fmt"
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
	benchPresetCases(b, presetCases())
}

// benchPresetCases runs each case as a sub-benchmark: its request sent
// again and again, its body rewound.
func benchPresetCases(b *testing.B, cases []presetCase) {
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req, body, cur := c.request(b)
			b.ReportAllocs()
			next := 0
			for b.Loop() {
				if c.bodies != nil {
					*cur = c.bodies[next%len(c.bodies)]
					next++
				}
				body.Reset(*cur)
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
	// bodies, when set, are sent in turn instead of body, all of body's
	// length.
	bodies [][]byte
}

// presetCases are BenchmarkPresets' stacks: bare, failsafe-go's, each
// preset's with its key and with the caller's own, and the parts of a
// preset.
func presetCases() []presetCase {
	inner := transport.Func(canned)
	base := transport.Base(inner)
	chat := benchChatBody(2 << 10)
	messages := benchMessagesBody(2 << 10)
	fs := func() http.RoundTripper { return failsafeStack(inner) }
	seeded := make([][]byte, 4096)
	for i := range seeded {
		seeded[i] = fmt.Appendf(bytes.TrimSuffix(benchChatBody(2<<10), []byte("}")), `,"seed":%04d}`, i)
	}
	const fast = 1e12 // requests a minute: never reached
	return []presetCase{
		{"bare", inner, benchChatURL, chat, nil, nil},
		{"failsafe-go", fs(), benchChatURL, chat, nil, nil},
		// failsafe-go given the job a preset does with its key: the key
		// added to a copy of each request, as a careful caller would.
		{"failsafe-go/key", withKey(fs()), benchChatURL, chat, nil, nil},
		{"together/key", together.NewTransport(inner, together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, chat, nil, nil},
		{"together/own-key", together.NewTransport(inner, together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, chat, http.Header{"Authorization": {"Bearer own"}}, nil},
		// own-key, each request's body ending unlike any recent one's (a
		// seed after the model), so that the model is read from the end
		// member by member, not found at once from a tail seen before.
		{"together/own-key-new-tail", together.NewTransport(inner, together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, seeded[0], http.Header{"Authorization": {"Bearer own"}}, seeded},
		{"openai/key", openai.NewTransport(inner, openai.WithAPIKey("k"), openai.WithRate(openai.RouteChat, fast)),
			openai.DefaultBaseURL + "/chat/completions", chat, nil, nil},
		{"openai/own-key", openai.NewTransport(inner, openai.WithAPIKey("k"), openai.WithRate(openai.RouteChat, fast)),
			openai.DefaultBaseURL + "/chat/completions", chat, http.Header{"Authorization": {"Bearer own"}}, nil},
		{"anthropic/key", anthropic.NewTransport(inner, anthropic.WithAPIKey("k"), anthropic.WithRate(anthropic.RouteMessages, fast)),
			anthropic.DefaultBaseURL + "/messages", messages, nil, nil},
		{"anthropic/own-key", anthropic.NewTransport(inner, anthropic.WithAPIKey("k"), anthropic.WithRate(anthropic.RouteMessages, fast)),
			anthropic.DefaultBaseURL + "/messages", messages, http.Header{"X-Api-Key": {"own"}, "Anthropic-Version": {anthropic.Version}}, nil},
		// The parts of a preset, each alone under Inspect (which reads the
		// model once for the others), around a base marked as a preset
		// marks its own (transport.Base): subtract "parts/inspect" from each.
		{"parts/inspect", transport.Inspect()(base), benchChatURL, chat, nil, nil},
		{"parts/inspect+retry", transport.Chain(base, transport.Inspect(), retry.New()), benchChatURL, chat, nil, nil},
		{"parts/inspect+breaker", transport.Chain(base, transport.Inspect(), breaker.New()), benchChatURL, chat, nil, nil},
		{"parts/inspect+limit", transport.Chain(base, transport.Inspect(),
			bucket.Limit(bucket.New(bucket.PerMinute(fast), bucket.WithBurst(fast)))), benchChatURL, chat, nil, nil},
		{"parts/inspect+keyed", transport.Chain(base, transport.Inspect(), bucket.Keyed(bucket.PerMinute(fast))), benchChatURL, chat, nil, nil},
	}
}

// failsafeStack is failsafe-go's retry, circuit breaker and rate limiter
// around inner, configured as the presets are.
func failsafeStack(inner http.RoundTripper) http.RoundTripper {
	rp := failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(4).WithBackoff(time.Second, 30*time.Second).Build()
	cb := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(r *http.Response, err error) bool { return err != nil || (r != nil && r.StatusCode >= 500) }).
		WithFailureThresholdRatio(5, 10).WithDelay(30 * time.Second).Build()
	rl := ratelimiter.NewSmoothBuilder[*http.Response](1e9, time.Second).WithMaxWaitTime(time.Minute).Build()
	return failsafehttp.NewRoundTripper(inner, rp, cb, rl)
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
func (c presetCase) request(tb testing.TB) (*http.Request, rewindBody, *[]byte) {
	cur := &c.body
	body := rewindBody{bytes.NewReader(c.body)}
	again := rewindBody{bytes.NewReader(c.body)}
	req, err := http.NewRequest(http.MethodPost, c.url, body)
	if err != nil {
		tb.Fatal(err)
	}
	req.ContentLength = int64(len(c.body))
	req.GetBody = func() (io.ReadCloser, error) { again.Reset(*cur); return again, nil }
	for k, v := range c.header {
		req.Header[k] = v
	}
	return req, body, cur
}

// BenchmarkPresetsSDK is BenchmarkPresets for the request an official SDK
// sends (its dozen headers, its own key, an Idempotency-Key) and the answer
// its provider gives (twenty-odd headers through a CDN, the rate headers
// among them, at limits never reached): what a preset costs in a service,
// where each answer's rate headers are read and learnt from. failsafe-go
// reads no header: it is given the same request and answer.
//
//	go test -run x -bench PresetsSDK -benchmem -count 10 ./compare/
func BenchmarkPresetsSDK(b *testing.B) {
	benchPresetCases(b, sdkCases())
}

// sdkCases are BenchmarkPresetsSDK's stacks, each over a base that answers
// as its provider does.
func sdkCases() []presetCase {
	cdn := func(h http.Header) http.Header {
		for k, v := range map[string]string{
			"Date": "Tue, 01 Dec 2026 03:00:00 GMT", "Content-Type": "application/json", "Connection": "keep-alive",
			"Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload", "X-Request-Id": "req_0123456789abcdef",
			"Cf-Cache-Status": "DYNAMIC", "X-Content-Type-Options": "nosniff", "Server": "cloudflare",
			"Cf-Ray": "8f00000000000000-SJC", "Alt-Svc": `h3=":443"; ma=86400`,
		} {
			h[k] = []string{v}
		}
		return h
	}
	// Limits far above what the benchmark reaches, reset soon: every
	// answer is read and learnt from, none holds a request back.
	openaiAnswer := cdn(http.Header{
		"Openai-Organization": {"org-0"}, "Openai-Processing-Ms": {"512"}, "Openai-Version": {"2020-10-01"},
		"Access-Control-Expose-Headers": {"X-Request-ID"},
		"X-Ratelimit-Limit-Requests":    {"1000000000000"}, "X-Ratelimit-Remaining-Requests": {"999999999999"},
		"X-Ratelimit-Reset-Requests": {"6ms"}, "X-Ratelimit-Limit-Tokens": {"100000000000000"},
		"X-Ratelimit-Remaining-Tokens": {"99999999999000"}, "X-Ratelimit-Reset-Tokens": {"1ms"},
	})
	togetherAnswer := cdn(http.Header{
		"X-Api-Call-Start": {"2026-12-01T03:00:00.000Z"}, "X-Api-Call-End": {"2026-12-01T03:00:00.512Z"},
		"X-Api-Received": {"2026-12-01T03:00:00.000Z"}, "X-Inference-Version": {"v2"},
		"X-Ratelimit-Limit": {"1000000000000"}, "X-Ratelimit-Remaining": {"999999999999"}, "X-Ratelimit-Reset": {"1"},
		"X-Ratelimit-Limit-Tokens": {"100000000000000"}, "X-Ratelimit-Remaining-Tokens": {"99999999999000"},
	})
	// Anthropic states when each window is whole again as a time, which
	// must be ahead of the clock for the answer to be read as its
	// provider's are (a time gone by resets nothing): a minute ahead, as
	// a minute window's would be, whenever the benchmark runs.
	reset := time.Now().Add(time.Minute).UTC().Truncate(time.Second).Format(time.RFC3339)
	anthropicAnswer := cdn(http.Header{
		"Anthropic-Organization-Id": {"00000000-0000-0000-0000-000000000000"}, "Request-Id": {"req_0"},
		"Via": {"1.1 google"}, "X-Robots-Tag": {"none"},
		"Anthropic-Ratelimit-Requests-Limit": {"1000000000000"}, "Anthropic-Ratelimit-Requests-Remaining": {"999999999999"},
		"Anthropic-Ratelimit-Requests-Reset":     {reset},
		"Anthropic-Ratelimit-Input-Tokens-Limit": {"100000000000000"}, "Anthropic-Ratelimit-Input-Tokens-Remaining": {"99999999999000"},
		"Anthropic-Ratelimit-Input-Tokens-Reset":  {reset},
		"Anthropic-Ratelimit-Output-Tokens-Limit": {"100000000000000"}, "Anthropic-Ratelimit-Output-Tokens-Remaining": {"99999999999000"},
		"Anthropic-Ratelimit-Output-Tokens-Reset": {reset},
		"Anthropic-Ratelimit-Tokens-Limit":        {"100000000000000"}, "Anthropic-Ratelimit-Tokens-Remaining": {"99999999999000"},
		"Anthropic-Ratelimit-Tokens-Reset": {reset},
	})
	answering := func(h http.Header) http.RoundTripper {
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody, Request: req}, nil
		})
	}
	stainless := func(key, value string, more ...string) http.Header {
		h := http.Header{key: {value}, "Content-Type": {"application/json"}, "Accept": {"application/json"},
			"X-Stainless-Lang": {"go"}, "X-Stainless-Os": {"Linux"}, "X-Stainless-Arch": {"x64"},
			"X-Stainless-Runtime": {"go"}, "X-Stainless-Runtime-Version": {"go1.26"}, "X-Stainless-Package-Version": {"3.0.0"},
			"X-Stainless-Retry-Count": {"0"}, "X-Stainless-Timeout": {"600"}, "Idempotency-Key": {"stainless-go-retry-0"}}
		for i := 0; i+1 < len(more); i += 2 {
			h[more[i]] = []string{more[i+1]}
		}
		return h
	}
	openaiSDK := stainless("Authorization", "Bearer own", "User-Agent", "OpenAI/Go 3.0.0")
	anthropicSDK := stainless("X-Api-Key", "own", "User-Agent", "Anthropic/Go 1.0.0", "Anthropic-Version", anthropic.Version)
	chat := benchChatBody(2 << 10)
	messages := benchMessagesBody(2 << 10)
	const fast = 1e12 // requests a minute: never reached
	return []presetCase{
		{"bare", answering(openaiAnswer), benchChatURL, chat, openaiSDK, nil},
		{"failsafe-go", failsafeStack(answering(openaiAnswer)), benchChatURL, chat, openaiSDK, nil},
		{"together", together.NewTransport(answering(togetherAnswer), together.WithAPIKey("k"), together.WithRate(together.RouteChat, fast)),
			benchChatURL, chat, openaiSDK, nil},
		{"openai", openai.NewTransport(answering(openaiAnswer), openai.WithAPIKey("k"), openai.WithRate(openai.RouteChat, fast)),
			openai.DefaultBaseURL + "/chat/completions", chat, openaiSDK, nil},
		{"anthropic", anthropic.NewTransport(answering(anthropicAnswer), anthropic.WithAPIKey("k"), anthropic.WithRate(anthropic.RouteMessages, fast)),
			anthropic.DefaultBaseURL + "/messages", messages, anthropicSDK, nil},
	}
}
