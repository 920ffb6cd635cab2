package preset

import (
	"net/http"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// assemble builds the stack of every route. Each route has its own
// limiters (per model), breakers and retry budget, so a storm on one
// endpoint does not slow another.
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
//
// Inspect, outermost of all (in Transport.RoundTrip), reads each request
// once for every layer. retry's rule is retry.ShouldRetry but for a 429 of
// an account out of quota, which is returned at once (see quotaRule).
func assemble(spec Spec, base http.RoundTripper, cfg *config) http.RoundTripper {
	routes := make(map[string]transport.Middleware, len(spec.Routes)+1)
	for name, r := range spec.Routes {
		routes[name] = buildRoute(spec, name, r, cfg)
	}
	if _, ok := routes[transport.EndpointOther]; !ok {
		routes[transport.EndpointOther] = buildRoute(spec, transport.EndpointOther, Route{}, cfg)
	}
	return transport.Chain(base, transport.Route(spec.Classify, routes))
}

func buildRoute(spec Spec, name string, r Route, cfg *config) transport.Middleware {
	var mw []transport.Middleware
	if r.Guard != nil {
		mw = append(mw, r.Guard)
	}
	if r.Fallback && len(cfg.chains) > 0 {
		mw = append(mw, transport.Fallback(cfg.chains, transport.WithEvents(cfg.events)))
	}
	if len(r.SlotRetry) > 0 && cfg.maxRetries != 0 {
		slot := retry.New(append([]retry.Option{retry.WithShouldRetryInfo(busy)}, append(r.SlotRetry, retry.WithEvents(cfg.events))...)...)
		if r.SlotFor == nil {
			mw = append(mw, slot, retries(r, cfg, true))
		} else {
			mw = append(mw, slotted(r.SlotFor, slot, retries(r, cfg, true), retries(r, cfg, false)))
		}
	} else {
		mw = append(mw, retries(r, cfg, false))
	}
	if r.Breaker {
		opts := []breaker.Option{breaker.WithEvents(cfg.events)}
		if key := spec.Key; key != nil {
			opts = append(opts, breaker.WithKey(func(req *http.Request, model string) string {
				if req.URL == nil {
					return key(req, model)
				}
				return req.URL.Host + " " + key(req, model)
			}))
		}
		mw = append(mw, breaker.New(append(opts, cfg.breaker...)...))
	}
	if r.Limit {
		rpm := r.RPM
		if v, ok := cfg.rates[name]; ok {
			rpm = v
		}
		if !(rpm > 0) {
			rpm = 0 // unknown, NaN too: learnt where the route learns
		}
		// An account out of quota is no rate limit: its 429s pause no
		// model and slow none (see outOfQuota).
		opts := []bucket.KeyedOption{bucket.WithLimitOptions(bucket.WithEvents(cfg.events), bucket.WithNotLimited(outOfQuota)),
			bucket.WithLimitOptions(r.Limits...)}
		if spec.Key != nil {
			opts = append(opts, bucket.WithKey(spec.Key))
		}
		if rpm <= 0 && r.LearnRate > 0 {
			opts = append(opts, bucket.WithLearnedRate(r.LearnRate))
		}
		switch {
		case r.NoTokens:
			opts = append(opts, bucket.WithoutTokens())
		case r.Tokens != nil:
			opts = append(opts, bucket.WithTokenLimits(r.Tokens...))
		}
		if cfg.store != nil {
			opts = append(opts, bucket.WithKeyStore(cfg.store, name+":"))
		}
		mw = append(mw, bucket.Keyed(bucket.PerMinute(rpm), opts...))
	}
	return func(next http.RoundTripper) http.RoundTripper { return transport.Chain(next, mw...) }
}

// maybeCreated are the statuses after which a route that creates jobs
// ([Route.Creates]) may have created one: an error of the server's own
// (500) or of a gateway in front of it (502, 504) can come after the work
// was done. A 503, 529, 429 or 409 says it was refused, and is retried.
var maybeCreated = []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusGatewayTimeout}

// retries is the retry decorator of route r; slot leaves a 409 to the
// slot retry around it ([Route.SlotRetry]).
func retries(r Route, cfg *config, slot bool) transport.Middleware {
	// An account out of quota is not retried (see quotaRule). The rule
	// cannot see a cap on the server's wait that the route's own options
	// raise: with them, it reads the body whatever the wait.
	maxWait := retry.DefaultMaxServerWait
	if len(r.Retry) > 0 {
		maxWait = transport.MaxSignalDelay
	}
	rule := quotaRule(maxWait)
	if slot {
		rule = notBusy(rule) // the slot's retry, around, waits for a 409
	}
	if r.Fallback && r.FallBackAtOnce && len(cfg.chains) > 0 {
		rule = overloadRule(rule, cfg.chains)
	}
	opts := append([]retry.Option{retry.WithShouldRetryInfo(rule)}, r.Retry...)
	if r.Creates {
		opts = append(opts, retry.WithMaybeProcessed(maybeCreated...))
	}
	switch {
	case cfg.maxRetries == 0:
		opts = append(opts, retry.WithMaxRetries(0))
	case cfg.maxRetries > 0 && !r.KeepRetry:
		opts = append(opts, retry.WithMaxRetries(cfg.maxRetries))
	}
	events := cfg.events
	if len(r.SlotRetry) > 0 && cfg.maxRetries != 0 && events != nil {
		events = notDone(events)
	}
	return retry.New(append(opts, retry.WithEvents(events))...)
}

// notDone is fn without the EventDone of each request: the retries of a
// route with a slot retry are sent once per slot attempt, and the slot
// retry around reports the request's end, once, with the answer the
// caller gets. The retries' other events (retries, give-ups) are fn's.
func notDone(fn transport.EventFunc) transport.EventFunc {
	return func(e transport.Event) {
		if e.Kind != transport.EventDone {
			fn(e)
		}
	}
}

// slotted sends a request that waits for a slot (slotFor) through slot
// and waits, the route's retries that leave a 409 to it, and any other
// through others, the route's retries as every route has them. Each way
// has its own retry budget.
func slotted(slotFor func(*http.Request) bool, slot, waits, others transport.Middleware) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &slotRoute{slotFor: slotFor, slot: slot(waits(next)), others: others(next), next: next}
	}
}

// slotRoute is the RoundTripper of slotted.
type slotRoute struct {
	slotFor      func(*http.Request) bool
	slot, others http.RoundTripper
	next         http.RoundTripper
}

func (s *slotRoute) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info.
func (s *slotRoute) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	if s.slotFor(req) {
		return transport.Forward(s.slot, req, info)
	}
	return transport.Forward(s.others, req, info)
}

// CloseIdleConnections closes the idle connections of the transport
// both ways wrap.
func (s *slotRoute) CloseIdleConnections() { transport.CloseIdleConnections(s.next) }

// busy is the rule of a route's slot retry ([Route.SlotRetry]): a 409,
// and nothing else, is sent again.
func busy(resp *http.Response, err error, _ *transport.Info) bool {
	return err == nil && resp != nil && resp.StatusCode == http.StatusConflict
}

// notBusy is rule, but for a 409, which it leaves to the slot retry
// around.
func notBusy(rule func(*http.Response, error, *transport.Info) bool) func(*http.Response, error, *transport.Info) bool {
	return func(resp *http.Response, err error, info *transport.Info) bool {
		return !busy(resp, err, info) && rule(resp, err, info)
	}
}

// overloadRule is rule, but for an overloaded answer (503, 529) to a
// request for a model that has alternates ([Route.FallBackAtOnce]): it is
// not retried, so that Fallback, above the retries, sends it to the next
// model at once. The model is the Info's of the attempt (Fallback gives
// the attempts at an alternate one of their own); only without one is it
// read again from the request the answer came to.
func overloadRule(rule func(*http.Response, error, *transport.Info) bool, chains map[string][]string) func(*http.Response, error, *transport.Info) bool {
	return func(resp *http.Response, err error, info *transport.Info) bool {
		if err == nil && resp != nil &&
			(resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == transport.StatusOverloaded) {
			m := ""
			switch {
			case info != nil:
				m = info.Model
			case resp.Request != nil:
				m, _, _ = transport.RequestModel(resp.Request, 0)
			}
			if len(chains[m]) > 0 {
				return false
			}
		}
		return rule(resp, err, info)
	}
}
