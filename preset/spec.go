package preset

import (
	"net/http"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// Spec describes a provider: everything [New] needs to build its stack.
type Spec struct {
	// Name names the provider in errors ("together: 429 Too Many
	// Requests ...").
	Name string

	// BaseURL is the API root requests are sent to by default, such as
	// "https://api.openai.com/v1". Requests for it go to the root given
	// with [WithBaseURL] instead. "" means the provider has no default
	// root (Azure OpenAI): the key goes to the root of WithBaseURL only.
	// A root that is not an absolute URL with a host ("api.example.com/v1")
	// fails every request with an error, as a bad WithBaseURL does, and
	// nothing is sent.
	BaseURL string

	// KeyEnv is the environment variable the API key is read from when
	// [WithAPIKey] is not given.
	KeyEnv string

	// Auth is how the key is sent: the header, and what precedes the key
	// in its value ([Bearer], or [APIKeyHeader] for Anthropic). An Auth
	// with no Header is [Bearer].
	Auth Auth

	// Headers are set on every request for the API that does not carry
	// them already, under any spelling of their names (Anthropic's
	// anthropic-version).
	Headers http.Header

	// Routes holds the policy of each endpoint, by the names of
	// [transport.Endpoint]. An endpoint without a route is retried and
	// nothing else.
	Routes map[string]Route

	// Classify names a request's endpoint, the key of Routes; nil means
	// [transport.Endpoint].
	Classify func(*http.Request) string

	// Key names what a request is limited and broken by, where it is not
	// the body's model: Azure OpenAI's deployment, in the path. It is
	// given the request and its model, read once for the whole stack. nil
	// means the model.
	Key func(req *http.Request, model string) string
}

// Auth is how a provider takes its API key: the value of Header is Prefix
// followed by the key.
type Auth struct {
	Header string // in canonical form, as http.CanonicalHeaderKey gives it
	Prefix string // before the key: "Bearer ", or "" for a bare key
}

// The ways providers take their key.
var (
	// Bearer is "Authorization: Bearer <key>" (Together, OpenAI and every
	// OpenAI-compatible API).
	Bearer = Auth{Header: "Authorization", Prefix: "Bearer "}
	// APIKeyHeader is "X-Api-Key: <key>" (Anthropic).
	APIKeyHeader = Auth{Header: "X-Api-Key"}
	// AzureKey is "Api-Key: <key>" (Azure OpenAI).
	AzureKey = Auth{Header: "Api-Key"}
)

// Route is the policy of one endpoint.
type Route struct {
	// Limit limits the route's requests per model ([bucket.Keyed]), from
	// RPM and what the server's answers teach.
	Limit bool

	// RPM is the rate each model starts at, in requests a minute, and the
	// highest the limiter goes ([WithRate] changes it). 0 means unknown:
	// the limiter starts slow, and learns the rate from the server's
	// stated limit when LearnRate is set.
	RPM float64

	// LearnRate, when positive, is the period the server's stated request
	// limit counts over (a minute for OpenAI and Anthropic): the first
	// answer that states it sets the rate of a model whose rate is
	// unknown (see [bucket.WithLearnedRate]).
	LearnRate time.Duration

	// Tokens are the server's token limits the route has limiters for,
	// beside the request limiter (nil: one, idle until the server shows
	// it; see [bucket.TokenLimit]). NoTokens turns them off.
	Tokens   []bucket.TokenLimit
	NoTokens bool // no token limiter at all

	// Limits are options of each model's [bucket.Limit], after the
	// preset's own (Together's: its published rule of a limit that grows
	// with use, [bucket.WithUseBasedLimit]).
	Limits []bucket.LimitOption

	// Breaker keeps a circuit breaker per model.
	Breaker bool

	// Fallback serves a request from the next model of its chain
	// ([WithFallback]) when its model is overloaded, unknown or its
	// breaker is open.
	Fallback bool

	// FallBackAtOnce sends a request whose model answers overloaded (503,
	// 529) to the next model of its chain at once, where the model has
	// one, instead of retrying the model first. It suits a provider that
	// limits each model apart (OpenAI, Anthropic), where the next model's
	// requests cost the overloaded one's limit nothing. Where one limit
	// spans the models (Together's key), the retries' backoff keeps the
	// two models' requests from doubling the key's rate until the
	// breaker opens.
	FallBackAtOnce bool

	// Retry are the route's retry options, before the caller's
	// ([WithMaxRetries]). With KeepRetry, the route's options are kept
	// whatever the caller gives, except that retries off
	// (WithMaxRetries(0)) is off here too: a fine-tune route waits for a
	// slot its own way.
	Retry     []retry.Option
	KeepRetry bool

	// SlotRetry, when set, are the options of a retry of its own, around
	// the route's, that sends a request again for a 409 alone (a slot that
	// is busy: Together runs a few fine-tunes per key at once and answers
	// 409 beyond), with a wait as long as a slot takes to free. The
	// route's own retries handle every other failure, as the caller sets
	// them, and leave the 409s to it. Retries off (WithMaxRetries(0)) turn
	// it off too. A request still ends once for the events: the slot
	// retry reports its transport.EventDone, the route's retries (sent
	// once per slot attempt) report their retries and give-ups only.
	SlotRetry []retry.Option

	// SlotFor names the requests that wait for a slot (SlotRetry): the
	// creations a busy slot refuses, such as Together's POST /fine-tunes.
	// Any other request of the route (a job's status, its cancel) is
	// retried as any route's, a 409 too, as the caller sets it. nil means
	// every request of the route.
	SlotFor func(*http.Request) bool

	// Creates marks a route whose POST creates what a second send would
	// create again, and bill again (a fine-tune job, a batch): such a
	// request is not sent again after a 500, 502 or 504, after which the
	// server may have created it ([retry.WithMaybeProcessed]), unless it
	// carries an Idempotency-Key (the Go SDKs, openai-go v3 and
	// anthropic-sdk-go v2, send none of their own) or the
	// answer says x-should-retry: true. The caller gets the answer, and
	// can look for the job before creating it again.
	Creates bool

	// Guard is the route's outermost middleware: a check made before
	// anything else (a batch that is too large is refused unsent).
	Guard transport.Middleware
}
