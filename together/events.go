package together

import "github.com/steadyapi/steady/transport"

// WithEvents sets a hook that hears every decorator of the preset, on every
// route, as [transport.Event]s: the limiters' waits, pauses and rate changes
// (with the endpoint and the model, as each model has its own limiter;
// Reason "tokens" for the limiter of text tokens that opens when the server
// shows a token limit, whose 429s the request limiter reports),
// each retry, give-up and finished request (with the endpoint), each
// breaker's changes of state and each fallback (with the endpoint and the
// model). Events never carry a request header, so never the API key.
//
// The hook is called on the request's goroutine, sometimes while a
// limiter or breaker is locked: it must return quickly and must not send
// requests through the same transport. A panic in it is recovered and the
// event dropped. Each call of WithEvents adds a hook; [WithHooks] and a
// breaker's own OnEvent ([WithBreaker]) keep working beside it.
//
// The packages under github.com/steadyapi/steady/observe turn events into
// log/slog records or OpenTelemetry metrics.
func WithEvents(fn transport.EventFunc) Option {
	return func(c *config) { c.events = transport.Events(c.events, fn) }
}

// modelEvents hands the events of model's limiter to fn with their Model
// set: the limiter does not read bodies, the per-model limiters did. nil
// when fn is, so that the limiter skips its events altogether.
func modelEvents(fn transport.EventFunc, model string) transport.EventFunc {
	if fn == nil {
		return nil
	}
	return func(e transport.Event) {
		e.Model = model
		fn(e)
	}
}

// tokenEvents hands the events of a token limiter to fn, but for its
// pauses: every answer it sees goes through the request limiter outside it
// too, which reports each 429 once already.
func tokenEvents(fn transport.EventFunc) transport.EventFunc {
	if fn == nil {
		return nil
	}
	return func(e transport.Event) {
		if e.Kind != transport.EventPaused {
			fn(e)
		}
	}
}
