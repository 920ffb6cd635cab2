package preset

import (
	"slices"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// Option configures [New]. Options not given keep the defaults the [Spec]
// says; an option given means what its argument says, zero included.
type Option func(*config)

type config struct {
	apiKey     string
	apiKeySet  bool // WithAPIKey was given: "" is no key, not the environment's
	baseURL    string
	rates      map[string]float64
	maxRetries int // -1: the routes' own
	chains     map[string][]string
	events     transport.EventFunc
	breaker    []breaker.Option
	store      bucket.Store
}

// WithAPIKey sets the API key, sent in the provider's own header (see
// [Auth]) on every request for the API's origin that does not carry one.
// Without it, the key is read from the environment variable of the
// [Spec] (KeyEnv). WithAPIKey("") means no key: none is added. Spaces and
// line ends around the key, from a file or a variable set from one, are
// not part of it.
func WithAPIKey(key string) Option {
	return func(c *config) { c.apiKey, c.apiKeySet = key, true }
}

// WithBaseURL sets the API root (default the Spec's BaseURL): the API key
// goes only to its scheme, host and port, and requests for the
// provider's default root (as a catalog fetch or an SDK pointed at it
// sends them, whatever wraps the transport) are sent to it instead, so
// that a client pointed at a proxy or a simulator stays there, with the
// root's query parameters, if it has any, ahead of their own. A root
// that is not an absolute URL with a host ("localhost:8080/v1"), or that
// carries credentials ("https://user:password@host/v1", which net/http's
// Transport would not send), fails every request with an error, and
// nothing is sent. WithBaseURL("") is the default, the Spec's BaseURL,
// whatever root an earlier WithBaseURL gave: a variable left empty sends
// to the provider itself, with the key.
func WithBaseURL(u string) Option { return func(c *config) { c.baseURL = u } }

// WithRate sets the starting rate of a route, by its endpoint name, in
// requests a minute: the tier the key is known to have. It is also the
// ceiling of the limiter's rate, which never rises above it. What a server
// says remains of its count before its reset is sent whatever the rate
// (see bucket.Limit): against a server that states its counts, a key told
// less than its limit is not held to the rate it was told. A rate
// of 0 or less (or NaN) means unknown: the limiter starts slow and finds
// the rate from the server's answers (its stated limit, where it states
// one). A route the preset does not limit (a name mistyped) fails every
// request with an error that names it, as a bad [WithBaseURL] does, and
// nothing is sent.
func WithRate(route string, rpm float64) Option {
	return func(c *config) {
		if c.rates == nil {
			c.rates = map[string]float64{}
		}
		c.rates[route] = rpm
	}
}

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default retry.DefaultMaxRetries); 0 or less turns retries
// off, as the SDKs' option.WithMaxRetries(0) does.
func WithMaxRetries(n int) Option { return func(c *config) { c.maxRetries = max(n, 0) } }

// WithFallback serves requests for model from alternates, in order, when
// model is overloaded, unknown or its circuit breaker is open. Only the
// request body's "model" changes; the answer's Steady-Model header names
// the model that served it. Given again for the same model, it adds the
// alternates not in its chain yet; model itself is never its own
// alternate, and neither is "" (a variable left unset), which names no
// model: a chain without alternates leaves the model's requests as they
// would be without WithFallback, retried. Given to a Spec none of whose
// routes falls back (Route.Fallback), it fails every request with an error
// that names it, rather than be ignored.
func WithFallback(model string, alternates ...string) Option {
	return func(c *config) {
		if c.chains == nil {
			c.chains = map[string][]string{}
		}
		chain := c.chains[model]
		for _, alt := range alternates {
			if alt != "" && alt != model && !slices.Contains(chain, alt) {
				chain = append(chain, alt)
			}
		}
		c.chains[model] = chain
	}
}

// WithBreaker sets the options of every route's circuit breakers (see
// [breaker.New]), on top of the defaults. The breakers' events go to the
// hooks of [WithEvents]; a breaker.WithEvents given here hears them too.
func WithBreaker(opts ...breaker.Option) Option {
	return func(c *config) { c.breaker = append(c.breaker, opts...) }
}

// WithStore keeps the request limiters of every route in s, one bucket
// per route and model (key "route:model"), so that every process using
// the same store shares the provider's limits, which are per API key. A
// 429 seen by one process pauses and slows them all. Without it (the
// default) the limiters are in memory. One store serves one API key. The
// token limiters stay in process. A store that reports events of its own
// ([bucket.EventReporter]) gets the hooks of [WithEvents] too, each
// transport's for as long as the store lives: a transport built per
// request adds a hook per request, so build them once. A nil store is
// ignored.
func WithStore(s bucket.Store) Option {
	return func(c *config) {
		if s != nil {
			c.store = s
		}
	}
}

// WithEvents sets a hook that hears every decorator of the stack, on
// every route, as [transport.Event]s: the limiters' waits, pauses and rate
// changes (with the endpoint, the model and the limiter's key; Reason
// "tokens", "input tokens" or "output tokens" for the token limiters,
// whose 429s the request limiter reports), each retry, give-up and
// finished request, each breaker's changes of state, each fallback, and
// the catalog fetches and batches the Transport sees. Events never carry
// a request header, so never the API key.
//
// The hook is called on the request's goroutine, sometimes while a
// limiter or breaker is locked: it must return quickly and must not send
// requests through the same transport. A panic in it is recovered and the
// event dropped. Each call of WithEvents adds a hook.
func WithEvents(fn transport.EventFunc) Option {
	return func(c *config) { c.events = transport.Events(c.events, fn) }
}
