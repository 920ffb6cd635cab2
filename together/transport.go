package together

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// DefaultBaseURL is Together's API root.
const DefaultBaseURL = "https://api.together.xyz/v1"

// Transport is the [http.RoundTripper] of [NewTransport] and [NewClient]:
// Together's rate limits, retries, circuit breakers and model fallback
// around a base transport. It is safe for concurrent use.
type Transport struct {
	stack  http.RoundTripper
	auth   string   // "Bearer <key>", or "" to send requests as they are
	api    *url.URL // the API root: the key goes to its origin only
	moved  bool     // api is not DefaultBaseURL: requests for that are sent to api
	events transport.EventFunc
}

// defaultAPI is DefaultBaseURL, parsed.
var defaultAPI, _ = url.Parse(DefaultBaseURL)

// NewTransport returns Together's stack around base (nil means
// [http.DefaultTransport]). See [Option] for what can be changed.
func NewTransport(base http.RoundTripper, opts ...Option) *Transport {
	cfg := config{maxRetries: -1}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.apiKey == "" {
		cfg.apiKey = os.Getenv("TOGETHER_API_KEY")
	}
	if base == nil {
		base = http.DefaultTransport
	}
	t := &Transport{api: defaultAPI, events: cfg.events}
	if cfg.baseURL != "" {
		if u, err := url.Parse(strings.TrimSuffix(cfg.baseURL, "/")); err == nil && u.Host != "" {
			t.api, t.moved = u, origin(u) != origin(defaultAPI) || u.Path != defaultAPI.Path
		}
	}
	if cfg.apiKey != "" {
		t.auth = "Bearer " + cfg.apiKey
	}
	if r, ok := cfg.store.(bucket.EventReporter); ok && cfg.events != nil {
		r.ReportEvents(cfg.events) // one hook hears the store too
	}
	t.stack = assemble(base, &cfg)
	return t
}

// NewClient returns an [http.Client] whose transport is
// NewTransport(http.DefaultTransport, opts...). It sets no Timeout: give
// each request a context deadline instead, which every wait respects.
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: NewTransport(nil, opts...)}
}

// assemble builds the stack of every route. Each route has its own limiter
// (per model), breakers and retry budget, so a storm on one endpoint does
// not slow another.
//
// The order inside a route, outermost first, is the design:
//
//   - Fallback sees the final word of everything inside it (retries spent,
//     breaker open) before it tries the next model, so it never abandons a
//     model over a 503 that one retry would have cured.
//   - retry is outside the breaker and the limiter, so every attempt takes
//     a token and is counted by the breaker: a retry storm is paced like
//     any other traffic, and a failing model trips its breaker on attempts,
//     not on whole requests.
//   - breaker is outside the limiter, so a model whose breaker is open fails
//     fast without taking a token or queueing behind healthy traffic.
//   - the limiter is innermost, next to the wire, so it reads the answer of
//     every attempt (each 429, each rate header) and paces exactly what the
//     server sees.
func assemble(base http.RoundTripper, cfg *config) http.RoundTripper {
	rate := func(route string, def float64) float64 {
		if r, ok := cfg.rates[route]; ok {
			return r
		}
		return def
	}
	retries := func(opts ...retry.Option) transport.Middleware {
		if cfg.maxRetries >= 0 {
			opts = append(opts, retry.WithMaxRetries(cfg.maxRetries))
		}
		return retry.New(append(opts, retry.WithEvents(cfg.events))...)
	}
	breakers := func() transport.Middleware {
		return breaker.New(append([]breaker.Option{breaker.WithEvents(cfg.events)}, cfg.breaker...)...)
	}
	inference := func(route string, rpm float64, tokens bool) transport.Middleware {
		return chain(
			transport.Fallback(cfg.chains, transport.WithEvents(cfg.events)),
			retries(),
			breakers(),
			perModel(bucket.PerMinute(rate(route, rpm)), tokens, shared{cfg.store, route}, cfg.events),
		)
	}
	// The fine-tune route waits for a slot with retries of its own, which
	// only turning retries off altogether changes.
	fineTunes := retry.New(append(fineTuneRetries(), retry.WithEvents(cfg.events))...)
	if cfg.maxRetries == 0 {
		fineTunes = retries()
	}
	return transport.Chain(base, transport.Route(nil, map[string]transport.Middleware{
		RouteChat:                   inference(RouteChat, DefaultChatRPM, true),
		RouteCompletions:            inference(RouteCompletions, DefaultChatRPM, true),
		RouteEmbeddings:             inference(RouteEmbeddings, DefaultEmbeddingsRPM, true),
		RouteImages:                 inference(RouteImages, DefaultImagesRPM, false),
		transport.EndpointFineTunes: fineTunes,
		transport.EndpointBatches:   chain(batchGuard, retries()),
		transport.EndpointOther:     retries(),
		transport.EndpointModels:    retries(),
	}))
}

// chain composes middleware into one, the first outermost.
func chain(mw ...transport.Middleware) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper { return transport.Chain(next, mw...) }
}

// RoundTrip sends req through the stack. A request for Together's own API
// root goes to the configured one instead (see [WithBaseURL]); a request
// for the API's origin (scheme, host and port) that has no Authorization
// header gets the API key. Any other request, a redirect to another host
// or port among them, is sent without it (the key is taken off if a
// redirect carried it there). The caller's request is never modified: the
// changes are made on a copy.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL != nil {
		move := t.moved && origin(req.URL) == origin(defaultAPI) && hasPathPrefix(req.URL.Path, defaultAPI.Path)
		own := move || origin(req.URL) == origin(t.api)
		have := req.Header.Get("Authorization")
		// The key is added for the API's origin, and taken off a request
		// for any other: net/http keeps Authorization on a redirect to
		// another port of the same host name.
		add := t.auth != "" && have == "" && own
		strip := t.auth != "" && have == t.auth && !own
		if move || add || strip {
			r := req.WithContext(req.Context())
			if move {
				u := *req.URL
				u.Scheme, u.Host, u.User = t.api.Scheme, t.api.Host, t.api.User
				u.Path = t.api.Path + strings.TrimPrefix(req.URL.Path, defaultAPI.Path)
				u.RawPath = ""
				r.URL, r.Host = &u, ""
			}
			if add || strip {
				r.Header = req.Header.Clone()
				if r.Header == nil {
					r.Header = http.Header{}
				}
				if add {
					r.Header.Set("Authorization", t.auth)
				} else {
					r.Header.Del("Authorization")
				}
			}
			req = r
		}
	}
	if t.events == nil {
		return t.stack.RoundTrip(req)
	}
	return t.observed(req)
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *Transport) CloseIdleConnections() { transport.CloseIdleConnections(t.stack) }

// observed sends req and reports what the stack's decorators cannot: a
// fetch of the model catalog, and a batch of EmbedAll, with how long they
// took.
func (t *Transport) observed(req *http.Request) (*http.Response, error) {
	batch, _ := req.Context().Value(batchKey{}).(*batchInfo)
	catalog := req.Method == http.MethodGet && transport.Endpoint(req) == transport.EndpointModels
	if batch == nil && !catalog {
		return t.stack.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.stack.RoundTrip(req)
	e := transport.Event{Kind: transport.EventCatalog, Endpoint: transport.Endpoint(req), Wait: time.Since(start), Err: err}
	if resp != nil {
		e.Status = resp.StatusCode
	}
	if batch != nil {
		e.Kind, e.Model, e.Count = transport.EventBatch, batch.model, batch.texts
	}
	t.events.Emit(e)
	return resp, err
}

// batchKey is the context key of a request of a batch helper, so the
// transport can report the batch ([transport.EventBatch]).
type batchKey struct{}

type batchInfo struct {
	model string
	texts int
}

// withBatch marks ctx as that of a batch of texts for model.
func withBatch(ctx context.Context, model string, texts int) context.Context {
	return context.WithValue(ctx, batchKey{}, &batchInfo{model: model, texts: texts})
}

// origin is u's scheme, host and port, the port made explicit, in lower
// case: what the API key is bound to.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		switch strings.ToLower(u.Scheme) {
		case "https":
			port = "443"
		case "http":
			port = "80"
		}
	}
	return strings.ToLower(u.Scheme + "://" + u.Hostname() + ":" + port)
}

// hasPathPrefix reports whether path is prefix or a path below it.
func hasPathPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// fineTuneRetries waits for a fine-tune slot: Together runs at most three
// jobs per key and answers 409 beyond, and a slot frees only when a job
// ends, minutes later. So a 409 is retried with a long backoff for as long
// as the caller's deadline allows (with no deadline, for about an hour).
func fineTuneRetries() []retry.Option {
	return []retry.Option{retry.WithMaxRetries(120), retry.WithBackoff(5*time.Second, time.Minute)}
}
