// Package bucket keeps calls to a rate-limited API at the rate the server
// allows: [Bucket] is the limiter, a token bucket with a strict FIFO queue,
// and [Limit] is its [net/http.RoundTripper] decorator, which takes tokens
// before each attempt and feeds every answer back into the bucket: a 429
// pauses the whole bucket until the server's reset and lowers the rate, the
// answers after it raise the rate again, and a server that reports what
// remains of its window has that window spent exactly.
//
//	b := bucket.New(bucket.PerMinute(600))
//	client := &http.Client{Transport: transport.Chain(nil, bucket.Limit(b))}
//
// # How the bucket keeps time
//
// The bucket is a virtual clock, as in GCRA: it stores the time at which it
// is empty, and holds (now - that time) × rate tokens, at most its burst.
// Nothing ticks, so an idle bucket costs nothing: no goroutine, no timer.
//
// Waiters form a queue in arrival order. Only the head's time is ever
// computed: it is granted when the bucket holds what it asked for, and the
// next waiter becomes the head. So the order is strict (a small request
// never passes a large one, a large one is never starved by small ones), a
// cancelled waiter simply leaves the queue and every waiter behind it moves
// up, and a change of rate or a pause applies to the queue at once, with
// nothing to recompute but the head. One timer, made when a queue first
// forms and stopped whenever it empties, wakes the head. A waiter costs one
// pooled struct with its channel, no goroutine and no polling.
//
// A request larger than the burst waits at the head until the bucket has
// saved its full share, instead of failing forever as in
// golang.org/x/time/rate or GCRA.
//
// A new bucket is not full: it lets its first request through at once and
// paces the rest from there. A server that enforces its limit per second
// (Together does) would accept a full second of tokens only if its own
// bucket were full, and it may not be; starting empty costs at most one
// second once.
//
// # What Limit learns
//
// A 429 pauses the whole bucket until the server's reset and lowers the
// rate once per pause, to just under the limit measured from what the
// server accepted; the rate then climbs back along a cubic, as TCP CUBIC
// does, to follow a limit that moves. Counts of what remains are obeyed
// exactly, whatever order requests in flight reach the server in: a server
// counting in windows has each window spent at once, a server that is a
// bucket has its count taken as the bucket's own. goals_test.go measures
// all of it against the simulated provider of package conformance.
//
// # Shared by many processes
//
// A provider's limit is per API key, so replicas of one service that each
// limit themselves to the whole of it send that many times what it allows.
// A bucket made [WithStore] keeps its state in a [Store] that every
// replica shares (package bucket/redisbucket keeps it in Redis): the
// store reserves tokens and answers how long to wait for them, so each
// replica sleeps exactly until its turn, with no polling. Within the
// process the queue stays FIFO and only its head asks the store, one round
// trip per grant, and a wait cancelled while it sleeps gives its
// reservation back. [Bucket.Pause] and [Bucket.SetRate] reach the store,
// so a 429 in one replica pauses and slows them all, and the rate the
// store holds is the one every replica uses. Limit works unchanged on top,
// except that the server's counts of what remains, which each replica sees
// only its share of, are not applied. Without a store the bucket is in
// memory, and nothing else is needed.
//
// # Deadlines
//
// [Bucket.Wait] refuses at once, with [transport.ErrDeadline] (which matches
// [context.DeadlineExceeded]), a wait that cannot end before its context's
// deadline, and later refuses a queued wait as soon as a pause or a slower
// rate pushes its turn to the deadline or past it. A wait that would end at
// the deadline itself is refused too, as [transport.Fits] and
// [transport.Sleep] refuse it: a request granted then has no time left. A bucket in a store knows a
// wait's turn only when the wait reaches the head of the queue and asks
// the store: it refuses it then, without reserving, if the store's answer
// is past the deadline.
package bucket
