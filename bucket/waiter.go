package bucket

import (
	"math"
	"slices"
)

// waiter is one call of Wait in the queue. Waiters are pooled with their
// channel, so a wait allocates nothing once the pool is warm; the channel
// has room for the one signal (granted or refused) a waiter ever receives,
// so the bucket never blocks on it.
//
// Its fields fit the 80-byte size class, as the waiter of a single FIFO
// queue did: a queue of 10,000 costs no more memory for having levels.
type waiter struct {
	ch         chan struct{}
	next, prev *waiter // within its level, in arrival order
	lvl        *level  // its level while queued
	n          float64 // tokens asked
	deadline   float64 // ns since the bucket's epoch; +Inf when none
	seq        uint64  // arrival order, across levels
	taken      float64 // the bucket's count of tokens granted, with this grant: its ticket's seq
	prio       int
	track      bool // a grant to Limit, counted in flight
	granted    bool
	refused    bool // its turn fell past its deadline
}

// level is the queued waiters of one priority, in arrival order.
type level struct {
	prio       int
	head, tail *waiter
	tokens     float64 // tokens asked by its waiters
	// saved is what its head had saved beyond the bucket's burst when
	// another waiter passed it (only the head of the queue saves, and
	// only a head is passed): its own, in the bucket's count again while
	// it is the head, and lost if it leaves. Meanwhile the bucket holds no
	// more than its burst for the waiters that passed it.
	saved float64
}

// queue holds waiters by priority, highest first, and in arrival order
// within a priority; it chooses who is served next (pick) and keeps the
// aging accounts that choice needs. It does no arithmetic of time: a
// bucket in memory serves its queue by its rate, a bucket in a store
// hands its turn to ask the store. Its owner's lock guards it.
//
// Aging: while a waiter is passed by waiters that came after it (of a
// higher priority), the tokens granted to them are counted in passed, and
// those granted to the oldest waiter in aged. The oldest waiter is served
// next, whatever its priority, as soon as that grant would keep the
// oldest waiters' tokens within share of all the tokens granted:
//
//	(passed + aged + n) × share >= aged + n
//
// so that at least share of what is granted goes to the waiters that have
// waited longest, and a lower level progresses under a steady stream of
// higher ones. Once the oldest has had its share (passed × share <=
// aged × (1-share)) both counts start again from zero: a level served on
// its own for a while earns the others no debt. The counts are sums of
// the waiters' tokens, so the rule is exact for whole tokens and a share
// of a tenth: nine tokens passed, the tenth to the oldest.
type queue struct {
	levels    []*level // highest priority first; never an empty one
	spare     []*level // emptied levels, so a level coming back allocates nothing
	n         int      // waiters queued
	tokens    float64  // tokens they ask
	deadlines int      // waiters that have a deadline
	seq       uint64   // arrivals so far
	saved     float64  // the levels' saved, in all

	share         float64 // the least share of grants the oldest waiters get; 0: none
	passed, aged  float64 // the aging accounts, in tokens
	cursors, rest []*waiter
}

// push appends w to the queue, at the end of its priority's level.
func (q *queue) push(w *waiter) {
	lv := q.level(w.prio)
	w.lvl = lv
	w.prev, w.next = lv.tail, nil
	if lv.tail == nil {
		lv.head = w
	} else {
		lv.tail.next = w
	}
	lv.tail = w
	lv.tokens += w.n
	q.seq++
	w.seq = q.seq
	q.n++
	q.tokens += w.n
	if w.deadline < inf {
		q.deadlines++
	}
}

// level finds the level of priority p, adding it where it belongs.
func (q *queue) level(p int) *level {
	i := 0
	for ; i < len(q.levels); i++ {
		if lv := q.levels[i]; lv.prio <= p {
			if lv.prio == p {
				return lv
			}
			break
		}
	}
	var lv *level
	if k := len(q.spare); k > 0 {
		lv, q.spare = q.spare[k-1], q.spare[:k-1]
	} else {
		lv = new(level)
	}
	lv.prio = p
	q.levels = slices.Insert(q.levels, i, lv)
	return lv
}

// unlink removes w from the queue.
func (q *queue) unlink(w *waiter) {
	lv := w.lvl
	if w.prev == nil {
		lv.head = w.next
		if lv.saved > 0 { // the head's savings leave with it
			q.saved -= lv.saved
			lv.saved = 0
		}
	} else {
		w.prev.next = w.next
	}
	if w.next == nil {
		lv.tail = w.prev
	} else {
		w.next.prev = w.prev
	}
	w.next, w.prev, w.lvl = nil, nil, nil
	lv.tokens -= w.n
	q.n--
	q.tokens -= w.n
	if w.deadline < inf {
		q.deadlines--
	}
	if lv.head == nil {
		lv.tokens = 0
		i := slices.Index(q.levels, lv)
		q.levels = slices.Delete(q.levels, i, i+1)
		q.spare = append(q.spare, lv)
	}
	if q.n == 0 { // no float drift, and no debt, survives an empty queue
		q.tokens, q.passed, q.aged, q.saved = 0, 0, 0, 0
	}
}

// savedAhead is what the heads of the levels of priority p or higher,
// but head, saved before they were passed: tokens a new waiter of
// priority p finds saved for waiters ahead of it.
func (q *queue) savedAhead(p int, head *waiter) float64 {
	var sum float64
	for _, lv := range q.levels {
		if lv.prio < p {
			break
		}
		if lv.head != head {
			sum += lv.saved
		}
	}
	return sum
}

// dropSaved forgets what passed heads saved: a server's count replaced
// the bucket's own, and what the bucket saved by it, theirs included.
func (q *queue) dropSaved() {
	if q.saved == 0 {
		return
	}
	for _, lv := range q.levels {
		lv.saved = 0
	}
	q.saved = 0
}

// pick is the waiter to serve next: the first of the highest level, or
// the oldest waiter when aging owes it its turn.
func (q *queue) pick() *waiter {
	switch len(q.levels) {
	case 0:
		return nil
	case 1: // one level: its head, at the cost of a FIFO queue
		return q.levels[0].head
	}
	return q.pickAcross()
}

// pickAcross is pick across several levels. It is kept out of pick so that
// pick, on one level, costs what the head of a FIFO queue does.
//
//go:noinline
func (q *queue) pickAcross() *waiter {
	top := q.levels[0].head
	if o := q.oldest(); o != top && owed(q.share, q.passed, q.aged, o.n) {
		return o
	}
	return top
}

// oldest is the waiter that has waited longest: the oldest head of a level.
func (q *queue) oldest() *waiter {
	var o *waiter
	for _, lv := range q.levels {
		if o == nil || lv.head.seq < o.seq {
			o = lv.head
		}
	}
	return o
}

// grant removes w, which pick chose, from the queue, and keeps the aging
// accounts.
func (q *queue) grant(w *waiter) {
	if len(q.levels) > 1 {
		q.account(w)
	} else {
		q.passed, q.aged = 0, 0 // one level: nobody is passed
	}
	q.unlink(w)
}

// account keeps the aging accounts of a grant to w across levels.
//
//go:noinline
func (q *queue) account(w *waiter) {
	account(q.share, &q.passed, &q.aged, w.n, w == q.oldest())
}

// owed reports whether the oldest waiter, asking n, is owed its turn.
func owed(share, passed, aged, n float64) bool {
	return (passed+aged+n)*share >= aged+n
}

// account counts a grant of n tokens, to the oldest waiter or to one that
// passed it, while other levels wait.
func account(share float64, passed, aged *float64, n float64, oldest bool) {
	if !oldest {
		*passed += n
		return
	}
	*aged += n
	if (*passed+*aged)*share <= *aged {
		*passed, *aged = 0, 0
	}
}

// ahead is the tokens a new waiter of priority p would see granted before
// its own, if nothing changed: every waiter of its priority or higher,
// and the share that aging gives the waiters of lower levels, all of
// which came before it. Exact for waiters of one size whose lower levels
// came first; otherwise an estimate. aged is the oldest waiter of the
// lower levels when that share counts it (its level's head, whose
// savings the caller may count), else nil.
func (q *queue) ahead(p int) (tokens float64, aged *waiter) {
	if len(q.levels) == 0 || q.levels[len(q.levels)-1].prio >= p {
		return q.tokens, nil // all of them: the common case, one level
	}
	var higher, lower float64
	var oldest *waiter // of the lower levels
	for _, lv := range q.levels {
		if lv.prio >= p {
			higher += lv.tokens
			continue
		}
		lower += lv.tokens
		if oldest == nil || lv.head.seq < oldest.seq {
			oldest = lv.head
		}
	}
	switch {
	case q.share >= 1:
		return higher + lower, oldest // arrival order
	case q.share <= 0:
		return higher, nil
	}
	// The aged grants made before the last of the higher ones: each m
	// tokens, made whenever owed holds.
	m := oldest.n
	passed := q.passed + higher
	k := math.Floor((passed*q.share-q.aged*(1-q.share))/(m*(1-q.share)) + 1e-9)
	if k < 1 {
		return higher, nil
	}
	return higher + min(lower, k*m), oldest
}

// simulate calls visit for every queued waiter, in the order the queue
// would serve them if nobody came or left, with the aging accounts as
// they would be. visit reports whether the waiter is served (counted),
// or dropped. The queue is not changed: the waiters visit drops are
// collected in q.rest for the caller to remove.
func (q *queue) simulate(visit func(w *waiter) bool) {
	cur := q.cursors[:0]
	for _, lv := range q.levels {
		cur = append(cur, lv.head)
	}
	q.rest = q.rest[:0]
	passed, aged := q.passed, q.aged
	for {
		top, old, waiting := -1, -1, 0
		for i, w := range cur {
			if w == nil {
				continue
			}
			waiting++
			if top < 0 {
				top = i
			}
			if old < 0 || w.seq < cur[old].seq {
				old = i
			}
		}
		if top < 0 {
			break
		}
		i := top
		if waiting > 1 && old != top && owed(q.share, passed, aged, cur[old].n) {
			i = old
		}
		w := cur[i]
		cur[i] = w.next
		if !visit(w) {
			q.rest = append(q.rest, w)
			continue
		}
		if waiting > 1 {
			account(q.share, &passed, &aged, w.n, i == old)
		} else {
			passed, aged = 0, 0
		}
	}
	clear(cur)
	q.cursors = cur
}

// release returns w, its channel drained, to the pool.
func (b *Bucket) release(w *waiter) {
	*w = waiter{ch: w.ch}
	b.pool.Put(w)
}
