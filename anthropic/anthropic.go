package anthropic

import (
	"net/http"
	"time"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

// DefaultBaseURL is Anthropic's API root.
const DefaultBaseURL = "https://api.anthropic.com/v1"

// Version is the anthropic-version header the preset sends on requests
// that carry none.
const Version = "2023-06-01"

// Transport is the [http.RoundTripper] of [NewTransport] and [NewClient].
// It is safe for concurrent use.
type Transport = preset.Transport

// RouteMessages is the Messages API's route, for [WithRate].
const RouteMessages = transport.EndpointMessages // POST /messages

// Spec is Anthropic's description for [preset.New]: /v1/messages limited
// per model, at a rate learnt from the first answer's
// anthropic-ratelimit-requests-limit (a minute's worth), with limiters of
// input and output tokens opened by their own headers; breakers and
// fallback, at once on an overloaded answer ([preset.Route.FallBackAtOnce]:
// Anthropic limits each model apart). Batches, models and token counting are retried only, and a
// batch's creation is not sent again after an answer that says it may
// exist (see [preset.Route.Creates]).
func Spec() preset.Spec {
	return preset.Spec{
		Name:    "anthropic",
		BaseURL: DefaultBaseURL,
		KeyEnv:  "ANTHROPIC_API_KEY",
		Auth:    preset.APIKeyHeader,
		Headers: http.Header{"Anthropic-Version": {Version}},
		Routes: map[string]preset.Route{
			RouteMessages: {Limit: true, LearnRate: time.Minute, Breaker: true, Fallback: true, FallBackAtOnce: true, Tokens: []bucket.TokenLimit{
				{Name: "input tokens", Counts: bucket.InputTokens, Header: "Anthropic-Ratelimit-Input-Tokens-", Window: time.Minute},
				{Name: "output tokens", Counts: bucket.OutputTokens, Header: "Anthropic-Ratelimit-Output-Tokens-", Window: time.Minute},
			}},
			// A message batch is billed: its creation is not sent again
			// after a 500, 502 or 504 without an Idempotency-Key (the SDK sends none).
			transport.EndpointBatches: {Creates: true},
		},
	}
}

// NewTransport returns Anthropic's stack around base (nil means
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

// Option configures [NewTransport] and [NewClient]: the options of every
// preset ([preset.Option]).
type Option = preset.Option

// WithAPIKey sets the API key, sent as "x-api-key: <key>" on every request
// for the API's host that has none of its own. Without it, the key is read
// from ANTHROPIC_API_KEY.
func WithAPIKey(key string) Option { return preset.WithAPIKey(key) }

// WithBaseURL sets the API root (default [DefaultBaseURL]): a proxy's or a
// simulator's. The key goes only to its scheme, host and port, and
// requests for [DefaultBaseURL] are sent to it instead. An empty root is
// the default.
func WithBaseURL(u string) Option { return preset.WithBaseURL(u) }

// WithRate sets the rate of [RouteMessages] in requests a minute, the
// ceiling of the limiter's rate too, instead of learning it from the first
// answer; what an answer says remains of the server's count is sent
// whatever the rate (see preset.WithRate). 0 or less means learnt. Any
// other route name fails every request with an error that names it.
func WithRate(route string, rpm float64) Option { return preset.WithRate(route, rpm) }

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default retry.DefaultMaxRetries); 0 or less turns retries
// off.
func WithMaxRetries(n int) Option { return preset.WithMaxRetries(n) }

// WithFallback serves requests for model from alternates, in order, when
// model is overloaded (529: at once, not retried first), unknown or its
// circuit breaker is open.
func WithFallback(model string, alternates ...string) Option {
	return preset.WithFallback(model, alternates...)
}

// WithBreaker sets the options of the circuit breakers (see
// [breaker.New]), on top of the defaults.
func WithBreaker(opts ...breaker.Option) Option { return preset.WithBreaker(opts...) }

// WithStore keeps the request limiters in s, shared by every process that
// uses it (see [preset.WithStore]).
func WithStore(s bucket.Store) Option { return preset.WithStore(s) }

// WithEvents sets a hook that hears every decorator of the stack (see
// [preset.WithEvents]).
func WithEvents(fn transport.EventFunc) Option { return preset.WithEvents(fn) }
