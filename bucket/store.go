package bucket

import (
	"context"
	"time"
)

// Store keeps a bucket's state outside the process, so that every process
// that limits itself against one API key shares one bucket: a provider's
// limit is per key, and four replicas that each allow the whole limit send
// four times what it allows. [WithStore] makes a bucket use one;
// package bucket/redisbucket keeps the state in Redis.
//
// A store is a clock of reservations (GCRA's theoretical arrival time):
// Reserve takes n tokens now and answers how long the caller must wait
// before using them, so each process sleeps exactly until its turn instead
// of polling. Every method is safe for concurrent use and must return
// within a bounded time whatever happens to the store's backend: a store
// that cannot reach its backend limits in process instead (and says so),
// it does not hang and it does not stop limiting.
type Store interface {
	// Reserve takes n tokens from the bucket named key and reports when
	// they may be used. A bucket the store does not know yet starts with
	// the given shape (its rate and burst); one it knows keeps the rate
	// stored with it, which may have been changed by another process. A
	// reservation whose wait would be longer than maxWait (when maxWait is
	// not negative) is not made: the answer has OK false and takes
	// nothing. The error is only ever ctx's.
	Reserve(ctx context.Context, key string, n float64, maxWait time.Duration, shape Shape) (Reservation, error)

	// Cancel gives back the tokens of a reservation that will not be used,
	// where the store still can (see the store's own rule: typically only
	// when no later reservation has been made on the key, since later ones
	// were already told their times).
	Cancel(ctx context.Context, key string, r Reservation)

	// Pause refuses every reservation on key until until: a 429 seen by
	// one process stops every process sharing the key. A pause never
	// shortens one already set.
	Pause(ctx context.Context, key string, until time.Time, shape Shape)

	// SetRate changes the bucket's rate (and burst) for every process
	// sharing key, keeping the tokens it holds, as [Bucket.SetRate] does.
	SetRate(ctx context.Context, key string, shape Shape)
}

// Shape is the rate and burst of a bucket, as a store is told them.
type Shape struct {
	PerSecond float64 // tokens a second
	Burst     float64 // the most tokens the bucket holds
}

// Reservation is a [Store]'s answer to Reserve.
type Reservation struct {
	// OK is false when the wait would have been longer than the caller
	// allowed: nothing was reserved.
	OK bool
	// Wait is how long from now until the tokens may be used (the wait
	// the reservation would have needed, when OK is false).
	Wait time.Duration
	// Rate is the bucket's rate in tokens a second as the store holds it,
	// which another process may have changed; 0 when not known.
	Rate float64
	// Tokens is what was reserved.
	Tokens float64
	// ID identifies the reservation to Cancel; its meaning is the store's.
	ID int64
}
