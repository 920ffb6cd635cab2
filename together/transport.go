package together

import (
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// Transport is the [http.RoundTripper] of [NewTransport] and [NewClient]:
// Together's rate limits, retries, circuit breakers and model fallback
// around a base transport. It is safe for concurrent use.
type Transport struct {
	stack   http.RoundTripper
	auth    string // "Bearer <key>", or "" to send requests as they are
	baseURL string

	catMu sync.Mutex
	cat   *Catalog
}

// NewTransport returns Together's stack around base (nil means
// [http.DefaultTransport]). See [Option] for what can be changed.
func NewTransport(base http.RoundTripper, opts ...Option) http.RoundTripper {
	return newTransport(base, opts)
}

// NewClient returns an [http.Client] whose transport is
// NewTransport(http.DefaultTransport, opts...). It sets no Timeout: give
// each request a context deadline instead, which every wait respects.
func NewClient(opts ...Option) *http.Client {
	return &http.Client{Transport: newTransport(nil, opts)}
}

func newTransport(base http.RoundTripper, opts []Option) *Transport {
	var cfg config
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
	t := &Transport{baseURL: strings.TrimSuffix(cfg.baseURL, "/")}
	if cfg.apiKey != "" {
		t.auth = "Bearer " + cfg.apiKey
	}
	t.stack = assemble(base, &cfg)
	return t
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
	retries := func(p retry.Policy) transport.Middleware {
		if p.MaxRetries == 0 {
			p.MaxRetries = cfg.maxRetries
		}
		p.OnRetry = cfg.hooks.OnRetry
		p.OnEvent = cfg.events
		return retry.New(p)
	}
	breakers := func() transport.Middleware {
		s := cfg.breaker
		if h, own := cfg.hooks.OnBreaker, s.OnStateChange; h != nil {
			s.OnStateChange = func(key string, from, to breaker.State) {
				if own != nil {
					own(key, from, to)
				}
				h(key, from, to)
			}
		}
		s.OnEvent = transport.Events(s.OnEvent, cfg.events)
		return breaker.New(s)
	}
	fallbackEvents := cfg.events
	if h := cfg.hooks.OnFallback; h != nil {
		fallbackEvents = transport.Events(func(e transport.Event) {
			h(e.From, e.To, transport.FallbackReason(e.Reason))
		}, cfg.events)
	}
	fallbackOpts := []transport.Option{transport.WithEvents(fallbackEvents)}
	inference := func(route string, rpm float64, tokens bool) transport.Middleware {
		return chain(
			transport.Fallback(cfg.chains, fallbackOpts...),
			retries(retry.Policy{}),
			breakers(),
			perModel(bucket.PerMinute(rate(route, rpm)), tokens, shared{cfg.store, route}, cfg.events),
		)
	}
	return transport.Chain(base, transport.Route(nil, map[string]transport.Middleware{
		RouteChat:                   inference(RouteChat, DefaultChatRPM, true),
		RouteCompletions:            inference(RouteCompletions, DefaultChatRPM, true),
		RouteEmbeddings:             inference(RouteEmbeddings, DefaultEmbeddingsRPM, true),
		RouteImages:                 inference(RouteImages, DefaultImagesRPM, false),
		transport.EndpointFineTunes: retries(fineTunePolicy()),
		transport.EndpointBatches:   chain(batchGuard, retries(retry.Policy{})),
		transport.EndpointOther:     retries(retry.Policy{}),
		transport.EndpointModels:    retries(retry.Policy{}),
	}))
}

// chain composes middleware into one, the first outermost.
func chain(mw ...transport.Middleware) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper { return transport.Chain(next, mw...) }
}

// RoundTrip adds the API key to a request that has no Authorization header
// (on a copy: the caller's request is not modified) and sends it through
// the stack.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.auth != "" && req.Header.Get("Authorization") == "" {
		r := req.WithContext(req.Context())
		r.Header = req.Header.Clone()
		if r.Header == nil {
			r.Header = http.Header{}
		}
		r.Header.Set("Authorization", t.auth)
		req = r
	}
	return t.stack.RoundTrip(req)
}

// catalog returns the transport's cached model catalog, made on first use
// with client.
func (t *Transport) catalog(client *http.Client) *Catalog {
	t.catMu.Lock()
	defer t.catMu.Unlock()
	if t.cat == nil {
		base := t.baseURL
		if base == "" {
			base = DefaultBaseURL
		}
		t.cat = NewCatalog(client, base, 0)
	}
	return t.cat
}

// fineTunePolicy waits for a fine-tune slot: Together runs at most three
// jobs per key and answers 409 beyond, and a slot frees only when a job
// ends, minutes later. So a 409 is retried with a long backoff for as long
// as the caller's deadline allows (with no deadline, for about an hour).
func fineTunePolicy() retry.Policy {
	return retry.Policy{
		MaxRetries: 120,
		BaseDelay:  5 * time.Second,
		MaxDelay:   time.Minute,
	}
}
