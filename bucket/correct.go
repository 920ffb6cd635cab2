package bucket

import "math"

// correct changes what grants took, after the fact, when the true cost of
// a request is known only from its answer (the usage of a token limit):
// n > 0 takes n tokens more now, without waiting, which the waiters behind
// pay for; n < 0 gives -n back, and the waiters behind move up. A bucket
// whose state is in a [Store] is not corrected: a store holds
// reservations, which cannot be given back once later ones are made.
func (b *Bucket) correct(n float64) {
	if n == 0 || math.IsNaN(n) || math.IsInf(n, 0) || b.link != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if n < 0 {
		b.s.refund(t, -n)
		b.dispatch(t)
		return
	}
	if b.s.fresh && !b.s.windowed(t) {
		b.s.settle(t, 0) // a debt ends the free first request
	}
	b.s.taken += n
	if !b.s.windowed(t) {
		b.s.base += n * b.s.every
	}
	b.expire(t)
	b.dispatch(t)
}
