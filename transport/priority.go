package transport

import "context"

// Priorities of a request, for [WithPriority]: higher goes first. Any int
// is a priority; these name the common cases, a hundred apart so that
// levels of one's own fit between them (a paying user's chat at 150, a
// backfill below the nightly batch at -200) without renumbering these.
const (
	// PriorityInteractive is for a request someone is waiting on: a
	// chatbot's answer, an autocomplete.
	PriorityInteractive = 100
	// PriorityDefault is the priority of a request that names none.
	PriorityDefault = 0
	// PriorityBatch is for work nobody watches: embedding a corpus, an
	// evaluation run, a nightly job.
	PriorityBatch = -100
)

type priorityKey struct{}

// WithPriority returns a copy of ctx that carries priority p for the
// requests made with it. A limiter that queues requests (package bucket)
// serves a higher priority first, and the requests of one priority in the
// order they came.
func WithPriority(ctx context.Context, p int) context.Context {
	return context.WithValue(ctx, priorityKey{}, p)
}

// PriorityOf reports the priority ctx carries: [PriorityDefault] when
// none was set.
func PriorityOf(ctx context.Context) int {
	p, _ := LookupPriority(ctx)
	return p
}

// LookupPriority reports the priority ctx carries, and whether one was
// set: a helper with a priority of its own for its requests (a batch job's)
// keeps the caller's instead when there is one, [PriorityDefault]
// included.
func LookupPriority(ctx context.Context) (p int, ok bool) {
	if p, ok := ctx.Value(priorityKey{}).(int); ok {
		return p, true
	}
	return PriorityDefault, false
}
