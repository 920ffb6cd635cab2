package bucket

// waiter is one call of Wait in the queue. Waiters are pooled with their
// channel, so a wait allocates nothing once the pool is warm; the channel
// has room for the one signal (granted or refused) a waiter ever receives,
// so the bucket never blocks on it.
type waiter struct {
	ch         chan struct{}
	next, prev *waiter
	n          float64 // tokens asked
	deadline   float64 // ns since the bucket's epoch; +Inf when none
	ticket     ticket
	track      bool // a grant to Limit, counted in flight
	granted    bool
	refused    bool // its turn fell past its deadline
}

// push appends w to the queue. b.mu must be held.
func (b *Bucket) push(w *waiter) {
	w.prev, w.next = b.tail, nil
	if b.tail == nil {
		b.head = w
	} else {
		b.tail.next = w
	}
	b.tail = w
	b.waiting++
	b.queued += w.n
	if w.deadline < inf {
		b.deadlines++
	}
}

// unlink removes w from the queue. b.mu must be held.
func (b *Bucket) unlink(w *waiter) {
	if w.prev == nil {
		b.head = w.next
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		b.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.next, w.prev = nil, nil
	b.waiting--
	b.queued -= w.n
	if b.head == nil {
		b.queued = 0 // no float drift survives an empty queue
	}
	if w.deadline < inf {
		b.deadlines--
	}
}

// release returns w, its channel drained, to the pool.
func (b *Bucket) release(w *waiter) {
	*w = waiter{ch: w.ch}
	b.pool.Put(w)
}
