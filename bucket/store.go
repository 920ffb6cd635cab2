package bucket

import (
	"context"
	"math"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
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

// Shape is the rate and burst of a bucket, as a store is told them. Both
// are finite: a bucket at the infinite rate is told as [UnlimitedShape].
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

// storeLink is what a bucket made [WithStore] keeps of its store.
type storeLink struct {
	store Store
	key   string
	// The turn is held by the head of the process's queue while it asks
	// the store and waits for its reservation: the store sees one
	// reservation per process at a time, each made when the one before it
	// was granted, so a pause or a slower rate set meanwhile applies to
	// everything after. The waits for it queue in q, by priority and in
	// arrival order within one (with the bucket's aging), and the holder
	// hands it to the one q picks. The bucket's lock guards these three.
	busy    bool
	q       queue
	waiting int // calls of Wait in progress, the turn's holder among them
	// paused is the end of the last pause this process set, in
	// nanoseconds since epoch (the bucket's) on the monotonic clock, which
	// a step of the wall clock does not move: a reservation made before it
	// is held until it ends.
	paused atomic.Int64
	epoch  time.Time
	// The bucket's rate goes to the store one call at a time, each sending
	// the rate of when it starts: a rate set while a call is on its way
	// (rateDue) is sent by the caller that holds rateSending once its call
	// is done, so the store's last write is always the latest rate.
	rateDue, rateSending atomic.Bool
}

func newStoreLink(s Store, key string, epoch time.Time) *storeLink {
	return &storeLink{store: s, key: key, epoch: epoch}
}

// pausedFor is how long the pause this process set goes on from now.
func (l *storeLink) pausedFor() time.Duration {
	return time.Duration(l.paused.Load()) - time.Since(l.epoch)
}

// awaitTurn takes the turn, waiting for it behind the waits queued with a
// priority no lower than prio. It returns ctx's cause if ctx ends first.
func (b *Bucket) awaitTurn(ctx context.Context, l *storeLink, n float64, prio int) error {
	b.mu.Lock()
	if !l.busy {
		l.busy = true
		b.mu.Unlock()
		return nil
	}
	w := b.pool.Get().(*waiter)
	w.n, w.deadline, w.prio = n, inf, prio
	l.q.push(w)
	b.mu.Unlock()
	select {
	case <-w.ch:
		b.release(w)
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.granted { // handed the turn as ctx ended: hand it on
		<-w.ch
		b.handTurn(l)
	} else {
		l.q.unlink(w)
	}
	b.mu.Unlock()
	b.release(w)
	return context.Cause(ctx)
}

// passTurn gives the turn back, to the next wait the queue picks.
func (b *Bucket) passTurn(l *storeLink) {
	b.mu.Lock()
	b.handTurn(l)
	b.mu.Unlock()
}

// handTurn hands the turn to the queue's pick, or frees it. b.mu must be
// held.
func (b *Bucket) handTurn(l *storeLink) {
	w := l.q.pick()
	if w == nil {
		l.busy = false
		return
	}
	l.q.grant(w)
	w.granted = true
	w.ch <- struct{}{}
}

// UnlimitedShape is the rate, in tokens a second, and the burst a store is
// told for a bucket at the infinite rate ([Every] of 0), and the rate at
// and above which a rate a store answers is taken as infinite. A store
// keeps finite numbers (+Inf would break redisbucket's script), and a
// token a picosecond limits no API; the store still shares the bucket's
// pauses.
const UnlimitedShape = 1e12

// shape is the bucket's rate and burst, for a store that does not know the
// bucket yet. b.mu must be held.
func (b *Bucket) shape() Shape {
	if b.s.every == 0 {
		return Shape{PerSecond: UnlimitedShape, Burst: min(b.s.burst, UnlimitedShape)}
	}
	return Shape{PerSecond: 1e9 / b.s.every, Burst: b.s.burst}
}

// storeWait is wait for a bucket whose state is in a store: the head of
// the queue reserves its tokens, sleeps exactly until its turn, and is
// granted; a wait cancelled meanwhile gives its reservation back.
func (b *Bucket) storeWait(ctx context.Context, l *storeLink, n float64, track bool) (ticket, error) {
	if err := ctx.Err(); err != nil {
		return ticket{}, context.Cause(ctx)
	}
	b.mu.Lock()
	l.waiting++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		l.waiting--
		b.mu.Unlock()
	}()
	if err := b.awaitTurn(ctx, l, n, transport.PriorityOf(ctx)); err != nil {
		return ticket{}, err
	}
	defer b.passTurn(l)

	// Without a deadline, a wait is still refused beyond MaxWait, as in
	// memory: the store takes nothing for it.
	maxWait, deadline := MaxWait, false
	if dl, ok := ctx.Deadline(); ok {
		if maxWait, deadline = time.Until(dl), true; maxWait < 0 {
			return ticket{}, transport.ErrDeadline
		}
	}
	b.mu.Lock()
	sh := b.shape()
	b.mu.Unlock()
	res, err := l.store.Reserve(ctx, l.key, n, maxWait, sh)
	if err != nil {
		return ticket{}, err
	}
	b.adopt(res.Rate)
	if !res.OK || res.Wait >= MaxWait {
		if res.OK {
			l.store.Cancel(context.WithoutCancel(ctx), l.key, res)
		}
		if !deadline {
			return ticket{}, ErrTooLong
		}
		return ticket{}, transport.ErrDeadline
	}
	if err := transport.Sleep(ctx, res.Wait); err != nil {
		l.store.Cancel(context.WithoutCancel(ctx), l.key, res)
		return ticket{}, err
	}
	// This process's own 429 may have paused the key after the store
	// answered: the reservation, made before the pause, waits for its end
	// (its slot is spent either way, so nothing is given back).
	for {
		d := l.pausedFor()
		if d <= 0 {
			break
		}
		if err := transport.Sleep(ctx, d); err != nil {
			return ticket{}, err
		}
	}
	return b.counted(n, track), nil
}

// counted counts n tokens the store granted as taken here, and returns
// their ticket: granted as granted does.
func (b *Bucket) counted(n float64, track bool) ticket {
	b.mu.Lock()
	b.s.taken += n
	tk := b.granted(n, track)
	b.mu.Unlock()
	return tk
}

// storeTryTake is TryTake for a bucket whose state is in a store.
func (b *Bucket) storeTryTake(l *storeLink, n float64) bool {
	b.mu.Lock()
	if l.busy {
		b.mu.Unlock()
		return false // someone is queued
	}
	l.busy = true
	b.mu.Unlock()
	defer b.passTurn(l)
	if l.pausedFor() > 0 {
		return false
	}
	b.mu.Lock()
	sh := b.shape()
	b.mu.Unlock()
	res, err := l.store.Reserve(context.Background(), l.key, n, 0, sh)
	if err != nil {
		return false
	}
	b.adopt(res.Rate)
	if !res.OK {
		return false
	}
	b.mu.Lock()
	b.s.taken += n
	b.mu.Unlock()
	return true
}

// adopt takes the rate the store holds, which another process may have
// set, without telling the store again.
func (b *Bucket) adopt(perSecond float64) {
	if !(perSecond > 0) || math.IsInf(perSecond, 0) {
		return
	}
	if perSecond >= UnlimitedShape {
		perSecond = math.Inf(1)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.maxRate > 0 {
		perSecond = min(perSecond, b.maxRate)
	}
	every := interval(perSecond)
	if math.Abs(every-b.s.every) <= 1e-9*b.s.every {
		return
	}
	if !b.burstFixed {
		b.s.burst = defaultBurst(perSecond)
	}
	b.s.setEvery(b.now(), every)
}

// hold holds this process's granted reservations until until: they were
// made before a pause the store may not know of yet.
func (l *storeLink) hold(until time.Time) {
	u := int64(until.Sub(l.epoch))
	for {
		old := l.paused.Load()
		if old >= u || l.paused.CompareAndSwap(old, u) {
			break
		}
	}
}

// storeNews is what a bucket has to tell its store: a pause (when not
// zero), and whether its rate changed.
type storeNews struct {
	pause time.Time
	rate  bool
}

// tellStore tells the store of a bucket made [WithStore] what n holds. The
// rate sent is the bucket's at the time of the call, not the one that was
// set, and the rates go one call at a time: two calls whose round trips
// crossed could otherwise leave the store with the older rate (a raise
// judged before a 429 overwriting the rate the 429 lowered), which every
// replica then adopts. A rate set while another call is on its way is sent
// after it, by that call's caller, and the caller that set it does not
// wait. It is called with no lock held, since a store's call is a round
// trip.
func (b *Bucket) tellStore(n storeNews) {
	l := b.link
	if l == nil || (n.pause.IsZero() && !n.rate) {
		return
	}
	if !n.pause.IsZero() {
		b.mu.Lock()
		sh := b.shape()
		b.mu.Unlock()
		l.store.Pause(context.Background(), l.key, n.pause, sh)
	}
	if !n.rate {
		return
	}
	l.rateDue.Store(true)
	for l.rateDue.Load() && l.rateSending.CompareAndSwap(false, true) {
		for l.rateDue.Swap(false) {
			b.mu.Lock()
			sh := b.shape()
			b.mu.Unlock()
			l.store.SetRate(context.Background(), l.key, sh)
		}
		l.rateSending.Store(false)
	}
}

// EventReporter is implemented by a [Store] that reports events of its own,
// such as going local when its backend stops answering and back
// ([transport.EventStore]). A preset given both a store and an event hook
// adds the hook to the store through it, so that one hook hears the whole
// stack.
type EventReporter interface {
	ReportEvents(fn transport.EventFunc)
}
