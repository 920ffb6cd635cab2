// Package bucket keeps calls to a rate-limited API at the rate the server
// allows: [Bucket] is the limiter, a token bucket with a queue ordered by
// priority and, within a priority, by arrival, and [Limit] is its
// [net/http.RoundTripper] decorator, which takes tokens before each
// attempt and feeds every answer back into the bucket: a 429 pauses the
// whole bucket until the server's reset and lowers the rate, the answers
// after it raise the rate again, and a server that reports what remains of
// its window has that window spent exactly.
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
// Waiters form a queue, by priority and in arrival order within one (see
// Priorities below). Only the head's time is ever computed: it is granted
// when the bucket holds what it asked for, and the next waiter becomes the
// head. So the order within a priority is strict (a small request never
// passes a large one, a large one is never starved by small ones), a
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
// Times are float64 nanoseconds since the bucket was made. So that they
// stay exact, a rate slower than one token every [MaxInterval] (100 days)
// refills at that; a wait that could not end within [MaxWait] (the longest
// time.Duration) is refused at once with [ErrTooLong]; [Every] of zero or
// less is the infinite rate, as in golang.org/x/time/rate.
//
// # Priorities
//
// A key's limit is shared by everything that runs on it: the chat a user
// waits on, and the nightly job that embeds a corpus with the same model.
// A request's priority travels in its context ([transport.WithPriority];
// [transport.PriorityInteractive], [transport.PriorityDefault] and
// [transport.PriorityBatch] name the usual levels, any int will do), and
// [Bucket.Wait], and so [Limit], serve a higher priority first. An
// interactive request queued behind thousands of batch waits is served
// next, at the next token; the batch goes on with the rest of the rate.
//
// A higher priority never starves a lower one for ever: a share of the
// grants, a tenth unless [WithAging] says otherwise, goes to the waiters
// that have waited longest, counted exactly in tokens (nine tokens pass
// them, the tenth is theirs), with no randomness. A waiter so owed is the
// head until it is granted, and a large one saves its full share as any
// head does. A request larger than the burst that a higher level passes
// keeps what it saved: the waiters that pass it find the bucket's burst,
// no more, and it goes on from its savings with the rest of the rate.
// Deadlines, cancellation, pauses, rates and server windows
// apply to every level as they do to one: a wait is refused at once when
// the waits it cannot pass (its level and above, and the share aging owes
// older ones) leave it no time, and a pause refuses the waits it makes
// late in the order the queue would serve them.
//
// [WithReserve] keeps a token or a few of the bucket from lower levels
// while a higher one is active, so that its next request is granted at
// once rather than at the next token; the lower levels lose those tokens
// once per active spell, not a share of the rate.
//
// Without priorities, the queue is the strict FIFO it always was, and it
// costs nothing more: the priority is read only when a wait queues (or
// when a reserve is set).
//
// # What Limit learns
//
// A 429 pauses the whole bucket until the server's reset. A short reset
// (a bucket's next token) lowers the rate once per pause, to just under
// the limit measured from what the server accepted between two 429s; a
// long one (a window) keeps it. The rate then climbs back along a cubic,
// as TCP CUBIC does, to follow a limit that moves. Counts of what remains
// are obeyed exactly, whatever order requests in flight reach the server
// in: a server counting in windows has each window spent at once, a
// server that is a bucket has its count taken as the bucket's own.
// Nothing a server says holds the key longer than [DefaultMaxPause] (or
// [WithMaxPause]). A 429 that is no rate limit (an account out of quota,
// told by its body: [WithNotLimited]) neither pauses nor slows it.
//
// matrix_test.go grades it on every server model of package conformance
// (conformance.Matrix: Together's dynamic limit, per-second buckets with
// and without a burst as nginx enforces them, sliding logs, fixed windows
// as express-rate-limit keeps them and on the clock, token limits, with
// every provider's headers and none), told the right limit, twice it and
// nothing, by time against an oracle client and the share of 429s; the
// compare module's reallimit package runs it against nginx and
// express-rate-limit themselves.
//
// # A limiter per model
//
// Providers limit each model of a key apart. [Keyed] keeps a [Limit] per
// key of the requests it sees (the model by default), bounded in count and
// key length, with token limiters ([TokenLimit]) beside each: a request is
// charged its estimated tokens of text, and the usage its answer reports
// teaches the share of max_tokens a key's requests really use. A rate left
// unknown can be learnt from the first answer that states it
// ([WithLearnedRate]), as OpenAI and Anthropic state theirs.
//
// # Shared by many processes
//
// A provider's limit is per API key, so replicas of one service that each
// limit themselves to the whole of it send that many times what it allows.
// A bucket made [WithStore] keeps its state in a [Store] that every
// replica shares (package bucket/redisbucket keeps it in Redis): the
// store reserves tokens and answers how long to wait for them, so each
// replica sleeps exactly until its turn, with no polling. Within the
// process the queue keeps its order and only its head asks the store, one
// round trip per grant, and a wait cancelled while it sleeps gives its
// reservation back. [Bucket.Pause] and [Bucket.SetRate] reach the store,
// so a 429 in one replica pauses and slows them all, and the rate the
// store holds is the one every replica uses. Limit works unchanged on top,
// except that the server's counts of what remains, which each replica sees
// only its share of, are not applied. Without a store the bucket is in
// memory, and nothing else is needed.
//
// Priorities order each replica's own queue: its waits take their turn to
// ask the store by priority, with aging, as in memory. The store itself
// serves reservations in the order they are made, whatever their priority,
// so across replicas an interactive request waits for the reservations
// the other replicas have already made, at most one each (each replica
// reserves for its head only, one at a time), but never for their queues.
// A reserve ([WithReserve]) applies to a bucket in memory only.
//
// # Deadlines
//
// [Bucket.Wait] refuses at once, with [transport.ErrDeadline] (which matches
// [context.DeadlineExceeded]), a wait that cannot end before its context's
// deadline, and later refuses a queued wait as soon as a pause or a slower
// rate pushes its turn to the deadline or past it. A wait that would end at
// the deadline itself is refused too, as [transport.Fits] and
// [transport.Sleep] refuse it: a request granted then has no time left. A
// bucket in a store knows a wait's turn only when the wait reaches the
// head of the queue and asks the store: it refuses it then, without
// reserving, if the store's answer is past the deadline.
package bucket
