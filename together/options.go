package together

import (
	"time"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/preset"
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

// Together's dynamic rate limit, as it documents it: a model's limit is
// about DynamicFactor times the key's successful rate over the past
// DynamicSpan, never under DynamicBaseRPM requests a minute (up to a cap
// the limiter learns from the server's 429s). The preset's limiters predict
// it from what the server accepted ([bucket.WithUseBasedLimit]).
const (
	DynamicFactor  = 2
	DynamicSpan    = time.Hour
	DynamicBaseRPM = 60
)

// Option configures [NewTransport] and [NewClient]: the options of every
// preset ([preset.Option]). Options not given keep the defaults documented
// with each; an option given means what its argument says, zero included.
type Option = preset.Option

// WithAPIKey sets the API key sent as "Authorization: Bearer <key>" on
// every request for the API's host (see [WithBaseURL]) that has no
// Authorization header of its own. Without it, the key is read from the
// TOGETHER_API_KEY environment variable.
func WithAPIKey(key string) Option { return preset.WithAPIKey(key) }

// WithBaseURL sets the API root (default [DefaultBaseURL]): the API key
// goes only to its scheme, host and port, and requests for Together's own
// root ([DefaultBaseURL], as [EmbedAll] and [Models] send them, whatever
// wraps the transport) are sent to it instead, so a client pointed at a
// proxy or a simulator stays there. An empty root is the default.
func WithBaseURL(u string) Option { return preset.WithBaseURL(u) }

// WithRate sets the starting rate of a route (RouteChat, RouteCompletions,
// RouteEmbeddings, RouteImages) in requests a minute: the tier the key is
// known to have. It is also the ceiling of the limiter's rate, which never
// rises above it; what the server says remains of its count before its
// reset is sent whatever the rate (see bucket.Limit). A rate of 0 or less
// means "unknown": the limiter starts slow and finds the rate from the
// server's answers. Any other route name fails every request with an
// error that names it.
func WithRate(route string, rpm float64) Option { return preset.WithRate(route, rpm) }

// WithMaxRetries sets how many times a request is sent again after its
// first attempt (default retry.DefaultMaxRetries, the guide's 4); 0 or less
// turns retries off, as openai-go's option.WithMaxRetries(0) does. The
// creation of a fine-tune keeps its own long wait for a slot (a 409)
// unless retries are off; its other failures, and every other request of
// the fine-tune route (a job's status, its cancel, a 409 included), are
// retried n times too.
func WithMaxRetries(n int) Option { return preset.WithMaxRetries(n) }

// WithFallback serves requests for model from alternates, in order, when
// model is overloaded, unknown or its circuit breaker is open. Only the
// request body's "model" changes; the answer's Steady-Model header names
// the model that served it.
func WithFallback(model string, alternates ...string) Option {
	return preset.WithFallback(model, alternates...)
}

// WithBreaker sets the options of every route's circuit breakers (see
// [breaker.New]), on top of the defaults. The breakers' events go to the
// hooks of [WithEvents]; a breaker.WithEvents given here hears them too.
func WithBreaker(opts ...breaker.Option) Option { return preset.WithBreaker(opts...) }

// WithStore keeps the request limiters of every route in s, one bucket per
// route and model (key "route:model"), so that every process using the
// same store shares Together's limits, which are per API key: four
// replicas each with the full limit would send four times what it allows.
// A 429 seen by one process pauses and slows them all. Without it (the
// default) the limiters are in memory and nothing needs Redis.
//
// bucket/redisbucket provides a store in Redis. One store serves one API
// key: processes using different keys on one Redis give each key its own
// prefix (redisbucket.WithPrefix). The token limiters that open when the
// server shows a token limit stay in process. A store that reports events
// of its own ([bucket.EventReporter], as redisbucket's does when Redis
// stops answering and when it answers again) gets the hooks of
// [WithEvents] too. A nil store is ignored.
func WithStore(s bucket.Store) Option { return preset.WithStore(s) }

// WithEvents sets a hook that hears every decorator of the preset, on every
// route, as [transport.Event]s: the limiters' waits, pauses and rate changes
// (with the endpoint and the model, as each model has its own limiter;
// Reason "tokens" for the limiter of text tokens that opens when the server
// shows a token limit, whose 429s the request limiter reports), each retry,
// give-up and finished request (with the endpoint), each breaker's changes
// of state and each fallback (with the endpoint and the model), the catalog
// fetches and the batches of [EmbedAll]. Events never carry a request
// header, so never the API key.
//
// The hook is called on the request's goroutine, sometimes while a
// limiter or breaker is locked: it must return quickly and must not send
// requests through the same transport. A panic in it is recovered and the
// event dropped. Each call of WithEvents adds a hook; a breaker's own
// hook ([WithBreaker]) keeps working beside it.
//
// The packages under github.com/steadyapi/steady/observe turn events into
// log/slog records or OpenTelemetry metrics.
func WithEvents(fn transport.EventFunc) Option { return preset.WithEvents(fn) }
