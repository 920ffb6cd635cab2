package together

import (
	"net/http"
	"strings"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// DefaultBaseURL is Together's API root.
const DefaultBaseURL = "https://api.together.xyz/v1"

// Transport is the [http.RoundTripper] of [NewTransport] and [NewClient]:
// Together's rate limits, retries, circuit breakers and model fallback
// around a base transport. It is safe for concurrent use.
type Transport = preset.Transport

// Spec is Together's description for [preset.New]: its root, its key, and
// each endpoint's policy (chat and completions 600 requests a minute,
// embeddings 300, images 60, per model, each knowing Together's rule of a
// limit that grows with use; a limiter of tokens, idle until
// the server shows one, counted per second and free to grow tenfold as
// Together's dynamic limits do; fine-tunes whose creation waits for a
// slot; batches
// checked before they are sent; neither created twice).
func Spec() preset.Spec {
	tokens := []bucket.TokenLimit{{Name: "tokens", Window: time.Second, Ceiling: 10}}
	// Together's published rule: a model's limit is about twice the key's
	// successful rate over the past hour, never under 60 requests a
	// minute.
	grows := bucket.WithUseBasedLimit(DynamicFactor, DynamicSpan, bucket.PerMinute(DynamicBaseRPM))
	inference := func(rpm float64, withTokens bool) preset.Route {
		r := preset.Route{Limit: true, RPM: rpm, Breaker: true, Fallback: true, Tokens: tokens,
			Limits: []bucket.LimitOption{grows}}
		if !withTokens {
			r.Tokens, r.NoTokens = nil, true
		}
		return r
	}
	return preset.Spec{
		Name:    "together",
		BaseURL: DefaultBaseURL,
		KeyEnv:  "TOGETHER_API_KEY",
		Auth:    preset.Bearer,
		Routes: map[string]preset.Route{
			RouteChat:        inference(DefaultChatRPM, true),
			RouteCompletions: inference(DefaultChatRPM, true),
			RouteEmbeddings:  inference(DefaultEmbeddingsRPM, true),
			RouteImages:      inference(DefaultImagesRPM, false),
			// A fine-tune's creation waits for a slot (a 409) with
			// retries of its own, which only turning retries off
			// altogether changes; its other failures, and every other
			// request of the route (a job's status, its cancel), are
			// retried as any route's.
			// Both create jobs, which are billed: a creation is not sent
			// again after a 500, 502 or 504, after which the job may exist.
			transport.EndpointFineTunes: {SlotRetry: fineTuneRetries(), SlotFor: createsFineTune, Creates: true},
			transport.EndpointBatches:   {Guard: batchGuard, Creates: true},
		},
	}
}

// NewTransport returns Together's stack around base (nil means
// [http.DefaultTransport]). See [Option] for what can be changed.
func NewTransport(base http.RoundTripper, opts ...Option) *Transport {
	return preset.New(Spec(), base, opts...)
}

// NewClient returns an [http.Client] whose transport is
// NewTransport(http.DefaultTransport, opts...). It sets no Timeout: give
// each request a context deadline instead, which every wait respects.
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(nil, opts...)}
}

// createsFineTune reports whether req creates a fine-tune job (POST
// /fine-tunes, under whatever root): the request a busy slot refuses with
// a 409. A 409 to anything else of the route says something else (a job
// that has ended cannot be cancelled), which no slot freeing cures.
func createsFineTune(req *http.Request) bool {
	return req.Method == http.MethodPost && req.URL != nil &&
		strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/fine-tunes")
}

// fineTuneRetries waits for a fine-tune slot: Together runs at most three
// jobs per key and answers 409 beyond, and a slot frees only when a job
// ends, minutes later. So a 409 is retried with a long backoff for as long
// as the caller's deadline allows (with no deadline, for about an hour);
// any other failure is retried as on every route.
func fineTuneRetries() []retry.Option {
	return []retry.Option{retry.WithMaxRetries(120), retry.WithBackoff(5*time.Second, time.Minute)}
}
