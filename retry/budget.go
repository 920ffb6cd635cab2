package retry

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
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

// request counts one call of RoundTrip, as its first attempt ends (unless
// it was not sent: see notSent).
func (b *budget) request() { bump(&b.requests, b.epoch()) }

// requestAt counts a request made at t.
func (b *budget) requestAt(t time.Time) { bump(&b.requests, b.epochAt(t.Sub(b.start))) }

// allowRetry reports whether one more retry fits the budget, and if so
// counts it: it returns the second the retry is counted in, or 0 when it
// does not fit.
func (b *budget) allowRetry() uint64 {
	now := b.epoch()
	allowed := max(b.ratio*float64(sum(&b.requests, now)), b.floor)
	if float64(sum(&b.retries, now))+1 > allowed {
		return 0
	}
	bump(&b.retries, now)
	return now
}

// unretry takes back a retry counted in second epoch (allowRetry's) whose
// attempt was refused before it was sent.
func (b *budget) unretry(epoch uint64) { unbump(&b.retries, epoch) }

// notSent reports whether err is the error of an attempt that a decorator
// under the retry decorator refused before sending it: a limiter's refusal
// ([transport.ErrNotSent]) or an open breaker's
// ([transport.ErrModelUnavailable]). The server saw nothing of it, so the
// budget counts it neither as a request nor as a retry: were it a request,
// an outage's refusals would raise the retries the others may send to the
// failing server.
func notSent(err error) bool {
	return errors.Is(err, transport.ErrNotSent) || errors.Is(err, transport.ErrModelUnavailable)
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

// unbump takes back one count bump made in second epoch, unless the slot
// has since been recycled for a later second: the count has then left the
// window already.
func unbump(ring *[slots]atomic.Uint64, epoch uint64) {
	s := &ring[epoch%uint64(slots)]
	for {
		v := s.Load()
		if v>>32 != epoch || v&countMask == 0 {
			return
		}
		if s.CompareAndSwap(v, v-1) {
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
