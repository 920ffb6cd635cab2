package together

import (
	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// Route names, for [WithRate]: the endpoints the preset limits apart.
const (
	RouteChat        = transport.EndpointChat        // POST /chat/completions
	RouteCompletions = transport.EndpointCompletions // POST /completions
	RouteEmbeddings  = transport.EndpointEmbeddings  // POST /embeddings
	RouteImages      = transport.EndpointImages      // POST /images/generations
)

// Default rates, in requests a minute: the figures Together documents for
// a new key. They are where the limiter starts; the server's 429s and
// headers move it from there.
const (
	DefaultChatRPM       = 600
	DefaultEmbeddingsRPM = 300
	DefaultImagesRPM     = 60
)

// Option configures [NewTransport] and [NewClient].
type Option func(*config)

type config struct {
	apiKey     string
	baseURL    string
	rates      map[string]float64
	maxRetries int
	chains     map[string][]string
	hooks      Hooks
	events     transport.EventFunc // see WithEvents
	breaker    breaker.Settings
	store      bucket.Store // see WithStore
}

// Hooks are called as the transport works, for logs and metrics. Every
// field may be nil. None of them sees a request header, so none sees the
// API key.
type Hooks struct {
	// OnRetry is called before each retry's wait.
	OnRetry func(retry.RetryEvent)
	// OnBreaker is called when a model's circuit breaker changes state;
	// key is the host and model.
	OnBreaker func(key string, from, to breaker.State)
	// OnFallback is called when a request leaves a model for the next of
	// its chain.
	OnFallback func(from, to string, why transport.FallbackReason)
}

// WithAPIKey sets the API key sent as "Authorization: Bearer <key>" on
// every request that has no Authorization header of its own. Without it,
// the key is read from the TOGETHER_API_KEY environment variable.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithBaseURL sets the API root ([DefaultBaseURL] by default) that
// [EmbedAll] and [Models] send to.
func WithBaseURL(u string) Option { return func(c *config) { c.baseURL = u } }

// WithRate sets the starting rate of a route (RouteChat, RouteCompletions,
// RouteEmbeddings, RouteImages) in requests a minute: the tier the key is
// known to have. It is also the ceiling the limiter never goes above. A
// rate of 0 or less means "unknown": the limiter starts slow and finds the
// rate from the server's answers.
func WithRate(route string, rpm float64) Option {
	return func(c *config) {
		if c.rates == nil {
			c.rates = map[string]float64{}
		}
		c.rates[route] = rpm
	}
}

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default 4, the guide's); a negative n turns retries off.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = n } }

// WithFallback serves requests for model from alternates, in order, when
// model is overloaded, unknown or its circuit breaker is open. Only the
// request body's "model" changes; the answer's Steady-Model header names
// the model that served it.
func WithFallback(model string, alternates ...string) Option {
	return func(c *config) {
		if c.chains == nil {
			c.chains = map[string][]string{}
		}
		c.chains[model] = append(c.chains[model], alternates...)
	}
}

// WithHooks sets the hooks called as the transport works.
func WithHooks(h Hooks) Option { return func(c *config) { c.hooks = h } }

// WithBreaker replaces the default circuit-breaker settings (see
// [breaker.Settings]); its OnStateChange is kept, and [Hooks.OnBreaker]
// is called too.
func WithBreaker(s breaker.Settings) Option { return func(c *config) { c.breaker = s } }
