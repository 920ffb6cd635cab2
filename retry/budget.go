package retry

import (
	"sync/atomic"
	"time"
)

const slots = int(BudgetWindow / time.Second)

// budget is the retry budget of one decorator: requests and retries counted
// over a sliding window of one-second slots.
//
// Each slot packs the second it counts (its epoch, counted from the
// budget's creation plus one, so that a zero slot is empty) in its high 32
// bits and the count in its low 32. A slot left over from an earlier turn
// of the ring is recycled with one compare-and-swap, so counting a request
// is, in the steady state, an atomic load and an atomic add, and no lock is
// ever taken.
type budget struct {
	start    time.Time // monotonic origin of the epochs
	ratio    float64
	floor    float64 // retries always allowed per window
	requests [slots]atomic.Uint64
	retries  [slots]atomic.Uint64
}

func newBudget(s settings) *budget {
	if s.budget < 0 {
		return nil
	}
	return &budget{start: time.Now(), ratio: s.budget, floor: s.floor * float64(slots)}
}

// epoch is the current second of the budget's clock, from 1.
func (b *budget) epoch() uint64 { return b.epochAt(time.Since(b.start)) }

// epochAt is the epoch d after start.
func (b *budget) epochAt(d time.Duration) uint64 {
	if d < 0 {
		d = 0
	}
	return uint64(d/time.Second) + 1
}

// request counts one call of RoundTrip, as its first attempt ends.
func (b *budget) request() { bump(&b.requests, b.epoch()) }

// requestAt counts a request made at t.
func (b *budget) requestAt(t time.Time) { bump(&b.requests, b.epochAt(t.Sub(b.start))) }

// allowRetry reports whether one more retry fits the budget, and if so
// counts it.
func (b *budget) allowRetry() bool {
	now := b.epoch()
	allowed := max(b.ratio*float64(sum(&b.requests, now)), b.floor)
	if float64(sum(&b.retries, now))+1 > allowed {
		return false
	}
	bump(&b.retries, now)
	return true
}

const countMask = 1<<32 - 1

func bump(ring *[slots]atomic.Uint64, now uint64) {
	s := &ring[now%uint64(slots)]
	for {
		v := s.Load()
		if v>>32 >= now { // this second's slot (or, after a long stall, a later one)
			s.Add(1)
			return
		}
		if s.CompareAndSwap(v, now<<32|1) { // a slot from ten or more seconds ago
			return
		}
	}
}

// sum counts what the ring holds for the window ending with second now.
func sum(ring *[slots]atomic.Uint64, now uint64) uint64 {
	var n uint64
	for i := range ring {
		v := ring[i].Load()
		if e := v >> 32; e <= now && e+uint64(slots) > now {
			n += v & countMask
		}
	}
	return n
}
