package bucket

import (
	"net/http"
	"time"

	"github.com/steadyapi/steady/transport"
)

// WithEvents sets a hook that hears what [Limit] does, as [transport.Event]s,
// the kind every steady decorator reports:
//
//   - transport.EventWaited when a request waited for its tokens (a
//     millisecond or more; shorter waits are the bucket's lock, not its
//     rate), with the wait and the request's priority;
//   - transport.EventPaused for every 429 answer, with how long the bucket
//     stays paused from then on;
//   - transport.EventRateChanged each time Limit sets the bucket's rate,
//     with the new rate in tokens a second.
//
// Each event has the request's endpoint ([transport.Endpoint]) and, as
// Reason, the units the bucket counts ("requests" or "tokens"). Limit does
// not read bodies, so Model is empty: a limiter per model (as package
// together keeps) can fill it in. Pauses and rate changes are reported
// while Limit's state is locked, so that they arrive in the order they
// happened: the hook must be quick and must not send requests through the
// same Limit. A panic in it is recovered and the event dropped. Without a
// hook, Limit does not even read the clock for it. Each WithEvents adds a
// hook; every hook hears every event.
func WithEvents(fn transport.EventFunc) LimitOption {
	return func(c *limitConfig) { c.events = transport.Events(c.events, fn) }
}

// minReportedWait is the shortest wait reported as EventWaited: a request
// granted at once still spends some time taking the bucket's lock.
const minReportedWait = time.Millisecond

// units names the units the bucket counts, for events.
func (c *control) units() string {
	if c.cfg.units == TextTokens {
		return "tokens"
	}
	return "requests"
}

// waited reports that req waited d for its tokens.
func (c *control) waited(req *http.Request, d time.Duration) {
	if d >= minReportedWait {
		c.cfg.events.Emit(transport.Event{Kind: transport.EventWaited, Endpoint: transport.Endpoint(req),
			Wait: d, Priority: transport.PriorityOf(req.Context()), Reason: c.units()})
	}
}

// pausedBy reports the pause a 429 to req started or joined. c.mu must be
// held.
func (c *control) pausedBy(req *http.Request, now time.Time) {
	if c.cfg.events != nil {
		c.cfg.events.Emit(transport.Event{Kind: transport.EventPaused, Endpoint: transport.Endpoint(req),
			Status: http.StatusTooManyRequests, Wait: c.pauseEnd.Sub(now), Reason: c.units()})
	}
}

// rateChanged reports the rate just set, on the answer to req. c.mu must
// be held.
func (c *control) rateChanged(req *http.Request) {
	if c.cfg.events != nil {
		c.cfg.events.Emit(transport.Event{Kind: transport.EventRateChanged, Endpoint: transport.Endpoint(req),
			Rate: c.rate, Reason: c.units()})
	}
}
