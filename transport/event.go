package transport

import (
	"strconv"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind uint8

// The kinds of [Event], and the decorator that emits each. The fields an
// event sets are listed beside its kind; the others are zero.
const (
	// EventWaited: a request waited for the limiter's tokens before it was
	// sent (bucket.Limit; only a wait of a millisecond or more, as shorter
	// ones are the limiter's lock, not its limit). Endpoint, Model, Wait
	// (how long it waited), Priority (the request's, see [WithPriority]),
	// Reason (the limiter's units: "requests" or "tokens").
	EventWaited EventKind = iota + 1

	// EventPaused: the server answered 429 and the limiter holds every
	// request of its bucket until the server's reset (bucket.Limit). One
	// per 429 answer, so counting them counts the 429s the limiter saw.
	// Endpoint, Model, Status (429), Wait (how long the bucket stays
	// paused from now on), Reason (the limiter's units).
	EventPaused

	// EventRateChanged: the limiter set a new rate, lower after a 429,
	// higher as answers come back (bucket.Limit). Endpoint, Model, Rate
	// (the new rate, in the limiter's units a second), Reason (the units:
	// "requests" or "tokens").
	EventRateChanged

	// EventRetry: an attempt failed and the request is about to be sent
	// again after a wait (retry). Endpoint, Attempt (the number of the
	// failed attempt, 1 for the first), Wait (the wait before the next
	// attempt), Status or Err (the failed attempt's), Reason ("server" when
	// the wait is the server's, "backoff" otherwise).
	EventRetry

	// EventGaveUp: the last attempt failed in a way that is retried, but no
	// retry is made (retry). Endpoint, Attempt (attempts made), Status or
	// Err, Reason (why no retry: see the retry package's Reason*
	// constants).
	EventGaveUp

	// EventDone: a request left the retry decorator, with a response or an
	// error (retry): one per call of RoundTrip, so counting them counts
	// requests. Endpoint, Attempt (attempts made; 0 when none was sent),
	// Status (of the response returned) or Err.
	EventDone

	// EventBreaker: a circuit breaker changed state (breaker). Key (the
	// breaker's key: by default the host and the model), Endpoint and Model
	// (those of the request that made the breaker), From and To (the
	// states: "closed", "open", "half-open").
	EventBreaker

	// EventFellBack: a request left its model for the next of its chain
	// ([Fallback]). Endpoint, Model (the model the caller asked for), From
	// and To (the models left and tried next), Reason (a [FallbackReason]).
	EventFellBack

	// EventStore: a limiter's shared store stopped answering and the
	// process limits itself alone, or it answers again and the limits are
	// shared again (bucket/redisbucket). From and To ("shared", "local"),
	// Err (why the store was given up, on the way to "local"), Rate (the
	// share of each bucket's rate the process allows itself while local).
	EventStore

	// EventCatalog: a preset fetched its model catalog (GET /models).
	// Wait (how long the fetch took), Status, and Err when the request
	// failed. (The preset does not read the answer: how many models it
	// lists is not counted.)
	EventCatalog

	// EventBatch: a batch helper (such as together.EmbedAll) finished one
	// of its requests. Endpoint, Model, Count (the items of the batch: texts
	// to embed), Wait (how long the request took), Status, and Err when the
	// request failed. An answer the helper then refuses (vectors missing,
	// of another model) is its own error's to report, not the event's.
	EventBatch
)

var eventKindNames = [...]string{
	EventWaited:      "waited",
	EventPaused:      "paused",
	EventRateChanged: "rate changed",
	EventRetry:       "retry",
	EventGaveUp:      "gave up",
	EventDone:        "done",
	EventBreaker:     "breaker",
	EventFellBack:    "fell back",
	EventStore:       "store",
	EventCatalog:     "catalog",
	EventBatch:       "batch",
}

// String returns the kind's name, as logs show it: "waited", "paused",
// "rate changed", "retry", "gave up", "done", "breaker", "fell back",
// "store", "catalog", "batch".
func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return "EventKind(" + strconv.Itoa(int(k)) + ")"
}

// Event is what a decorator reports as it works, for logs and metrics: one
// type for every decorator, so one hook hears the whole stack. Which fields
// are set depends on Kind (see the [EventKind] constants); the others are
// zero.
//
// An event holds no request header, no URL and no body, so it never carries
// the API key. Err is the error the decorator got from the transport inside
// it, as it would return it.
type Event struct {
	// Kind is what happened.
	Kind EventKind

	// Endpoint is the request's endpoint, as [Endpoint] names it ("chat",
	// "embeddings", ...; "" for any other).
	Endpoint string

	// Model is the request's model, when the decorator had read it anyway
	// (the breaker, [Fallback], a limiter per model); "" otherwise. No
	// decorator reads a body to fill it in.
	Model string

	// Wait is the time waited, paused or about to be slept.
	Wait time.Duration

	// Status is the HTTP status of the answer concerned, 0 when none.
	Status int

	// Err is the transport error concerned, nil when none.
	Err error

	// Rate is the limiter's new rate, in tokens a second.
	Rate float64

	// Attempt is an attempt's number, or the attempts made.
	Attempt int

	// Priority is the request's priority ([PriorityOf]) where the
	// decorator orders by it: a limiter's waits are told apart by it, as a
	// batch is meant to wait minutes where a chat should not wait at all.
	Priority int

	// Count is how many items an event concerns: the texts of a batch.
	Count int

	// From and To are the states a breaker or a store went between, or the
	// models a request fell back between.
	From, To string

	// Key names the breaker an event concerns (its key), or the limiter
	// (the key of a limiter of bucket.Keyed: the model, or the store key
	// of a shared bucket); "" for the other kinds.
	Key string

	// Reason says why, in a word or two; for the limiter's events, which
	// units it counts.
	Reason string
}

// EventFunc receives [Event]s. A decorator calls it on the request's
// goroutine, before it goes on with the request, sometimes while holding a
// lock of its own: it should return quickly and must not send requests
// through the decorator that called it. It may be called from many
// goroutines at once.
type EventFunc func(Event)

// Emit calls f with e, and does nothing when f is nil. A panic in f is
// recovered and the event dropped: a broken log or metrics hook must not
// take down the request that reported it.
//
// Emit is for decorators; they check f against nil before they build the
// event, so that a decorator with no hook pays one comparison.
func (f EventFunc) Emit(e Event) {
	if f == nil {
		return
	}
	defer func() { _ = recover() }()
	f(e)
}

// Events returns an EventFunc that hands each event to every non-nil fn, in
// order, each on its own (a panic in one does not keep the event from the
// others); nil when there is none, so decorators still skip building events
// nobody hears.
func Events(fn ...EventFunc) EventFunc {
	var live []EventFunc
	for _, f := range fn {
		if f != nil {
			live = append(live, f)
		}
	}
	switch len(live) {
	case 0:
		return nil
	case 1:
		return live[0]
	}
	return func(e Event) {
		for _, f := range live {
			f.Emit(e)
		}
	}
}
