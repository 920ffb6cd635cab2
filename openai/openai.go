package openai

import (
	"net/http"
	"strings"
	"time"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

// DefaultBaseURL is OpenAI's API root.
const DefaultBaseURL = "https://api.openai.com/v1"

// Transport is the [http.RoundTripper] of [NewTransport], [NewClient] and
// [NewAzureTransport]. It is safe for concurrent use.
type Transport = preset.Transport

// Route names, for [WithRate]: the endpoints the preset limits apart.
const (
	RouteChat        = transport.EndpointChat        // POST /chat/completions
	RouteCompletions = transport.EndpointCompletions // POST /completions
	RouteEmbeddings  = transport.EndpointEmbeddings  // POST /embeddings
	RouteResponses   = transport.EndpointResponses   // POST /responses
	RouteImages      = transport.EndpointImages      // POST /images/generations
)

// Spec is OpenAI's description for [preset.New]: every inference endpoint
// limited per model, at a rate learnt from the first answer's
// x-ratelimit-limit-requests (a minute's worth), with a token limiter
// opened by its x-ratelimit-limit-tokens; breakers and fallback on each,
// at once on an overloaded answer ([preset.Route.FallBackAtOnce]: OpenAI
// limits each model apart).
// Fine-tuning jobs and batches are retried only, and a creation is not
// sent again after an answer that says the job may exist (see
// [preset.Route.Creates]).
func Spec() preset.Spec {
	inference := func(tokens bool) preset.Route {
		return preset.Route{Limit: true, LearnRate: time.Minute, Breaker: true, Fallback: true, FallBackAtOnce: true, NoTokens: !tokens,
			Tokens: tokenLimits(tokens)}
	}
	return preset.Spec{
		Name:    "openai",
		BaseURL: DefaultBaseURL,
		KeyEnv:  "OPENAI_API_KEY",
		Auth:    preset.Bearer,
		Routes: map[string]preset.Route{
			RouteChat:        inference(true),
			RouteCompletions: inference(true),
			RouteEmbeddings:  inference(true),
			RouteResponses:   inference(true),
			RouteImages:      inference(false),
			// Each creates a job, which is billed: not sent again after a
			// 500, 502 or 504 without an Idempotency-Key (the SDK sends none).
			transport.EndpointFineTunes: {Creates: true},
			transport.EndpointBatches:   {Creates: true},
		},
	}
}

func tokenLimits(on bool) []bucket.TokenLimit {
	if !on {
		return nil
	}
	return []bucket.TokenLimit{{Name: "tokens", Window: time.Minute}}
}

// NewTransport returns OpenAI's stack around base (nil means
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

// AzureSpec is Azure OpenAI's description: OpenAI's routes, the key in an
// api-key header (from AZURE_OPENAI_API_KEY), no default root (give the
// resource's with WithBaseURL, "https://<resource>.openai.azure.com/openai"),
// and each deployment, named in the path
// (/openai/deployments/{deployment}/chat/completions?api-version=...),
// limited and broken apart. Azure states what remains
// (x-ratelimit-remaining-requests, -tokens) and retry-after-ms, not its
// limits: the rates start slow unless given with WithRate. A deployment is
// its model, so there is no fallback to another: the body's model is not
// what Azure serves.
func AzureSpec() preset.Spec {
	s := Spec()
	s.Name, s.BaseURL, s.KeyEnv, s.Auth, s.Key = "azure openai", "", "AZURE_OPENAI_API_KEY", preset.AzureKey, deploymentKey
	for name, r := range s.Routes {
		r.Fallback = false
		s.Routes[name] = r
	}
	return s
}

// NewAzureTransport returns Azure OpenAI's stack around base (nil means
// [http.DefaultTransport]) for the resource at endpoint
// ("https://<resource>.openai.azure.com"): requests for it get the key.
func NewAzureTransport(base http.RoundTripper, endpoint string, opts ...Option) *Transport {
	opts = append([]Option{WithBaseURL(strings.TrimSuffix(endpoint, "/") + "/openai")}, opts...)
	return preset.New(AzureSpec(), base, opts...)
}

// Deployment is the deployment an Azure OpenAI request names in its path
// (/openai/deployments/{deployment}/...), or its body's model when it
// names none.
func Deployment(req *http.Request) string {
	if d, ok := pathDeployment(req); ok {
		return d
	}
	if info := transport.InfoOf(req); info != nil {
		return info.Model
	}
	m, _, _ := transport.RequestModel(req, -1)
	return m
}

// deploymentKey is the Azure Spec's Key: the deployment of the path, or
// the model read of the body.
func deploymentKey(req *http.Request, model string) string {
	if d, ok := pathDeployment(req); ok {
		return d
	}
	return model
}

// pathDeployment is the deployment named in req's path, if any.
func pathDeployment(req *http.Request) (string, bool) {
	if req.URL != nil {
		if _, rest, ok := strings.Cut(req.URL.Path, "/deployments/"); ok {
			d, _, _ := strings.Cut(rest, "/")
			return d, true
		}
	}
	return "", false
}

// Option configures [NewTransport], [NewClient] and [NewAzureTransport]:
// the options of every preset ([preset.Option]).
type Option = preset.Option

// WithAPIKey sets the API key, sent as "Authorization: Bearer <key>" (Azure:
// "api-key: <key>") on every request for the API's host that has none of
// its own. Without it, the key is read from OPENAI_API_KEY
// (AZURE_OPENAI_API_KEY).
func WithAPIKey(key string) Option { return preset.WithAPIKey(key) }

// WithBaseURL sets the API root (default [DefaultBaseURL]): an
// OpenAI-compatible host's ("https://api.groq.com/openai/v1"), a proxy's
// or a simulator's. The key goes only to its scheme, host and port, and
// requests for [DefaultBaseURL] are sent to it instead. An empty root is
// the default (for [NewAzureTransport], none: the key is sent nowhere).
func WithBaseURL(u string) Option { return preset.WithBaseURL(u) }

// WithRate sets the rate of a route (RouteChat, ...) in requests a minute,
// the ceiling of the limiter's rate too, instead of learning it from the
// first answer; what an answer says remains of the server's count is sent
// whatever the rate (see preset.WithRate). 0 or less means learnt. Any
// other route name fails every request with an error that names it.
func WithRate(route string, rpm float64) Option { return preset.WithRate(route, rpm) }

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default retry.DefaultMaxRetries); 0 or less turns retries
// off.
func WithMaxRetries(n int) Option { return preset.WithMaxRetries(n) }

// WithFallback serves requests for model from alternates, in order, when
// model is overloaded (503: at once, not retried first), unknown or its
// circuit breaker is open. Azure has no fallback (a deployment is its
// model): given to [NewAzureTransport], it fails every request with an
// error that names it.
func WithFallback(model string, alternates ...string) Option {
	return preset.WithFallback(model, alternates...)
}

// WithBreaker sets the options of every route's circuit breakers (see
// [breaker.New]), on top of the defaults.
func WithBreaker(opts ...breaker.Option) Option { return preset.WithBreaker(opts...) }

// WithStore keeps the request limiters in s, shared by every process that
// uses it (see [preset.WithStore]).
func WithStore(s bucket.Store) Option { return preset.WithStore(s) }

// WithEvents sets a hook that hears every decorator of the stack (see
// [preset.WithEvents]).
func WithEvents(fn transport.EventFunc) Option { return preset.WithEvents(fn) }
