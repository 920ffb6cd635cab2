package conformance

import (
	"sync"

	"github.com/steadyapi/steady/transport"
)

// EventRecorder collects the events a decorator emits, from any number of
// goroutines, for a test to assert on. The zero value is ready to use.
//
//	var rec conformance.EventRecorder
//	rt := retry.New(retry.WithEvents(rec.Record))(next)
//	// ... send requests, then look at rec.Events().
type EventRecorder struct {
	mu     sync.Mutex
	events []transport.Event
}

// Record appends e. Pass it as the decorator's event hook.
func (r *EventRecorder) Record(e transport.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of the events recorded so far, in order.
func (r *EventRecorder) Events() []transport.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]transport.Event(nil), r.events...)
}
