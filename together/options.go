package together

import (
	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
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

// Option configures [NewTransport] and [NewClient]. Options not given keep
// the defaults documented with each; an option given means what its
// argument says, zero included.
type Option func(*config)

type config struct {
	apiKey     string
	baseURL    string
	rates      map[string]float64
	maxRetries int // -1: the default
	chains     map[string][]string
	events     transport.EventFunc // see WithEvents
	breaker    []breaker.Option
	store      bucket.Store // see WithStore
}

// WithAPIKey sets the API key sent as "Authorization: Bearer <key>" on
// every request for the API's host (see [WithBaseURL]) that has no
// Authorization header of its own. Without it, the key is read from the
// TOGETHER_API_KEY environment variable.
func WithAPIKey(key string) Option { return func(c *config) { c.apiKey = key } }

// WithBaseURL sets the API root (default [DefaultBaseURL]): the API key
// goes only to its scheme, host and port, and requests for Together's own
// root ([DefaultBaseURL], as [EmbedAll] and [Models] send them, whatever
// wraps the transport) are sent to it instead, so a client pointed at a
// proxy or a simulator stays there.
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
// first attempt (default retry.DefaultMaxRetries, the guide's 4); 0 or less
// turns retries off, as openai-go's option.WithMaxRetries(0) does. The
// fine-tune route keeps its own long wait for a slot unless retries are
// off.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = max(n, 0) } }

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

// WithBreaker sets the options of every route's circuit breakers (see
// [breaker.New]), on top of the defaults. The breakers' events go to the
// hooks of [WithEvents]; a breaker.WithEvents given here hears them too.
func WithBreaker(opts ...breaker.Option) Option {
	return func(c *config) { c.breaker = append(c.breaker, opts...) }
}
