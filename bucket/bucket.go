package bucket

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// Bucket is a token bucket with a queue of waiters, served by priority
// and in arrival order within a priority. It is safe for concurrent use;
// make one with [New].
type Bucket struct {
	mu    sync.Mutex
	epoch time.Time     // times in state are nanoseconds since epoch
	per   time.Duration // the period Rate reports in, as configured

	// wall is a reading of time.Now, taken at wallAt since epoch: the
	// clock of a grant at once is wall moved on by the monotonic clock
	// alone (see nowLocked).
	wall   time.Time
	wallAt time.Duration

	s          state
	burstFixed bool // burst set by the caller; otherwise a second of the rate
	unknown    bool // made with an unknown rate: Limit slow-starts it
	// The tokens granted to Limit whose answer has not come back are
	// tracked less back (whole tokens: a cost is an int). tracked counts
	// every tracked grant, under the lock that grants it; back counts
	// their answers, an atomic, so that an answer is counted off without
	// the bucket's lock. Every answer follows the grant it ends, so back
	// never passes tracked.
	tracked int64
	back    atomic.Int64
	unsent  float64 // tokens granted to Limit not yet handed to the next RoundTripper

	// The queue: intrusive lists, so queueing allocates nothing. head is
	// the waiter the bucket saves for (settled): the one the queue picks.
	q    queue
	head *waiter

	// The reserve kept for higher levels (WithReserve), and when it lapses:
	// hold after the last request at or above its level.
	reserve     reserve
	reserveEnds float64

	// One timer, for the head of the queue only; created when a queue first
	// forms and stopped whenever it empties.
	timer   *time.Timer
	timerAt float64 // when the timer is due; -1 when stopped

	pool sync.Pool // *waiter, so a steady stream of waits allocates nothing

	link *storeLink // the shared state, for a bucket made WithStore

	// maxRate bounds a rate adopted from a store: another process's Limit
	// may have a higher ceiling than this one's. 0: no bound.
	maxRate float64
}

// Option configures a [Bucket] made by [New].
type Option func(*options)

type options struct {
	burst   float64 // 0: one second of the rate
	initial float64 // -1: fresh
	store   Store
	key     string
	aging   float64 // the share WithAging set: DefaultAging unless given
	reserve reserve
}

// reserve is what WithReserve keeps for higher levels.
type reserve struct {
	level  int
	tokens float64       // 0: no reserve
	hold   time.Duration // how long it outlives the level's last request
}

// DefaultAging is the share of the tokens granted that goes to the
// waiters that have waited longest while higher priorities pass them:
// see [WithAging].
const DefaultAging = 0.1

// WithAging sets the least share of the bucket's grants that goes to the
// waiters that have waited longest, whatever their priority, while
// waiters of higher priorities that came after them are served first
// (default [DefaultAging], a tenth): a batch queued behind a steady stream
// of interactive requests still progresses, at a tenth of the rate, and
// gets the whole rate whenever the stream pauses.
//
// The accounting is exact and has no randomness: the tokens granted to
// waiters that passed an older one are counted, and the oldest waiter is
// served next as soon as its tokens are no more than share of all those
// counted since it last had its share. With a share of a tenth and
// requests of one token, nine pass and the tenth goes to the oldest. A
// share of 1 serves every waiter in arrival order, whatever its priority;
// a share of 0 turns aging off: a higher priority always goes first, and a
// lower one may wait for as long as higher ones keep coming. A share below
// 0 counts as 0, above 1 as 1; NaN keeps the default.
func WithAging(share float64) Option {
	return func(o *options) {
		if !math.IsNaN(share) {
			o.aging = min(max(share, 0), 1)
		}
	}
}

// DefaultReserveHold is how long a reserve outlives the last request of
// its level: see [WithReserve].
const DefaultReserveHold = time.Minute

// WithReserve keeps tokens of the bucket for requests of priority level or
// higher, from the waits of lower priorities, while the level is active:
// from each of its requests until hold after it. Lower priorities are then
// granted only what the bucket holds beyond tokens (one is enough for
// requests of one token), so that the next request of the level, the first
// of a user coming back after a quiet spell among them, finds its tokens
// at once instead of waiting for the next one to drip in behind a batch.
// The cost to the lower levels is the tokens kept, once per active spell
// (tokens ÷ rate of their time), not a share of the rate: a bucket that
// holds its reserve refills as fast as it is drained.
//
// Without this option there is no reserve. Tokens of 0 or less (or NaN)
// reserve nothing; a reserve beyond the burst keeps the burst. A hold that
// is not positive keeps [DefaultReserveHold].
func WithReserve(level int, tokens float64, hold time.Duration) Option {
	return func(o *options) {
		if !(tokens > 0) {
			tokens = 0
		}
		if hold <= 0 {
			hold = DefaultReserveHold
		}
		o.reserve = reserve{level: level, tokens: tokens, hold: hold}
	}
}

// WithStore keeps the bucket's state in s under key, shared with every
// bucket of every process that uses the same store and key: reservations,
// pauses and the rate (so one process's 429 slows them all). Within the
// process the queue keeps its order, by priority and arrival, and only its
// head asks the store, one reservation at a time. The server's counts of
// what remains, which [Limit] applies to a bucket of its own, are not
// shared: a store holds a rate and pauses, not windows. A nil store is
// ignored.
func WithStore(s Store, key string) Option {
	return func(o *options) {
		if s != nil {
			o.store, o.key = s, key
		}
	}
}

// WithBurst sets the most tokens the bucket holds, and so the most it lets
// through at once after an idle spell. The default is one second of the
// rate, at least one token: Together enforces its limits per second, so one
// second of tokens is what its own bucket holds. A burst set here stays
// fixed when the rate changes; the default follows the rate. A burst that is
// not a positive number is ignored.
func WithBurst(tokens float64) Option {
	return func(o *options) {
		if tokens > 0 && !math.IsInf(tokens, 0) {
			o.burst = tokens
		}
	}
}

// WithInitial makes the bucket start holding tokens (at most its burst). By
// default a new bucket lets its first request through at once and paces the
// rest from there: it does not start full, because the server's bucket may
// hold less than a full burst when this process starts (another process, or
// this one before a restart, may have used it), and a burst the server
// refuses costs more than the second it saves.
func WithInitial(tokens float64) Option {
	return func(o *options) {
		if tokens >= 0 && !math.IsInf(tokens, 0) {
			o.initial = tokens
		}
	}
}

// MaxWait is the longest wait a bucket takes on: the longest
// [time.Duration], about 292 years, beyond which no timer can be set.
const MaxWait = time.Duration(math.MaxInt64)

// ErrTooLong refuses, at once, a wait that could not end within [MaxWait]:
// a request of more tokens than the bucket could grant in that time. Such
// a wait would hold its place for ever, and every wait behind it.
var ErrTooLong = errors.New("bucket: the wait would be longer than bucket.MaxWait")

// New returns a bucket that refills at r. An unknown r (the zero [Rate])
// starts at one token a second; a rate slower than one token every
// [MaxInterval] refills one token every MaxInterval.
func New(r Rate, opts ...Option) *Bucket {
	o := options{initial: -1, aging: DefaultAging}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	ps := r.PerSecond()
	unknown := !r.Known()
	if unknown {
		ps, r.Per = 1, time.Second
	}
	b := &Bucket{epoch: time.Now(), per: r.Per, timerAt: -1, unknown: unknown}
	if b.per <= 0 {
		b.per = time.Second
	}
	b.s.every = interval(ps)
	b.s.burst = defaultBurst(ps)
	if o.burst > 0 {
		b.s.burst, b.burstFixed = o.burst, true
	}
	b.s.fresh = o.initial < 0
	if !b.s.fresh {
		b.s.base = -min(o.initial, b.s.burst) * b.s.every
	}
	b.pool.New = func() any { return &waiter{ch: make(chan struct{}, 1)} }
	b.q.share = o.aging
	b.reserve, b.reserveEnds = o.reserve, -inf
	if o.store != nil {
		b.link = newStoreLink(o.store, o.key, b.epoch)
		b.link.q.share = b.q.share
	}
	return b
}

func defaultBurst(perSecond float64) float64 { return max(1, perSecond) }

func (b *Bucket) now() float64 { return float64(time.Since(b.epoch)) }

func (b *Bucket) at(t time.Time) float64 { return float64(t.Sub(b.epoch)) }

// nowLocked returns the time now, and as b.at gives it, reading the
// monotonic clock alone (half of time.Now's cost) but once a second: the
// wall time it gives is that of the last time.Now moved on by the
// monotonic clock, which lags a step of the wall clock (a resume from
// sleep, a manual set) by at most a second. Callers hold b.mu.
func (b *Bucket) nowLocked() (time.Time, float64) {
	d := time.Since(b.epoch)
	if b.wall.IsZero() || d-b.wallAt >= time.Second || d < b.wallAt {
		b.wall = time.Now()
		b.wallAt = b.wall.Sub(b.epoch)
		return b.wall, float64(b.wallAt)
	}
	return b.wall.Add(d - b.wallAt), float64(d)
}

// TryTake takes n tokens if the bucket holds them now and nobody is waiting,
// and reports whether it did. It never waits and never jumps the queue. A
// request larger than the burst never passes TryTake: use [Bucket.Wait].
// It has the default priority ([transport.PriorityDefault]), so a
// [WithReserve] above it holds it back too.
func (b *Bucket) TryTake(n int) bool {
	if n <= 0 {
		return true
	}
	f := float64(n)
	if b.link != nil {
		return b.storeTryTake(b.link, f)
	}
	b.mu.Lock()
	if b.head != nil {
		b.mu.Unlock()
		return false
	}
	t := b.now()
	if b.s.fresh && f > b.s.burst && b.s.every > 0 && !b.s.windowed(t) {
		b.mu.Unlock()
		return false
	}
	if r := &b.reserve; r.tokens > 0 && transport.PriorityDefault >= r.level {
		b.reserveEnds = t + float64(r.hold)
	}
	b.s.settle(t, f)
	at := b.s.readyAt(t, f)
	if b.reserve.tokens > 0 {
		at = b.due(&b.s, t, f, transport.PriorityDefault)
	}
	if at > t {
		b.mu.Unlock()
		return false
	}
	b.s.take(t, f)
	b.mu.Unlock()
	return true
}

// Wait takes n tokens, waiting for them behind everyone of its priority
// or higher who asked before.
//
// The priority is ctx's ([transport.PriorityOf]; the default when it names
// none). A higher priority goes first; waiters of one priority are served
// in the order they arrived: a large request is not starved by small ones
// of its priority, and a small one does not pass a large one. Waiters that
// higher priorities pass still get a share of the grants ([WithAging]). A
// request larger than the burst waits its full share (n tokens' worth of
// time) instead of failing.
//
// A wait that cannot end before ctx's deadline is refused at once with
// [transport.ErrDeadline], which matches [context.DeadlineExceeded]; so is a
// queued wait pushed past its deadline by [Bucket.Pause] or a slower rate.
// A wait that would end at the deadline itself is refused too: a request
// granted then has no time left to be sent. A wait that could not end
// within [MaxWait] is refused at once with [ErrTooLong]. When ctx ends
// during the wait, Wait returns [context.Cause] and the tokens are given
// back: the waiters behind move up.
func (b *Bucket) Wait(ctx context.Context, n int) error {
	_, err := b.wait(ctx, float64(n), false)
	return err
}

// ticket is what a tracked grant tells Limit, so it can read a server's
// count of what remains: after this grant the bucket had granted seq
// tokens in all. When the request was sent, unsent tokens granted to
// others had not been sent yet, and flying tokens granted to others had
// no answer yet: any of those may reach the server after this request,
// the unsent ones almost surely.
type ticket struct{ seq, unsent, flying float64 }

// wait is Wait; when track is set, the grant counts as in flight until
// Limit calls answered.
func (b *Bucket) wait(ctx context.Context, n float64, track bool) (ticket, error) {
	if b.link != nil && n > 0 {
		return b.storeWait(ctx, b.link, n, track)
	}
	done := ctx.Done()
	if done != nil {
		select {
		case <-done:
			return ticket{}, context.Cause(ctx)
		default:
		}
	}
	b.mu.Lock()
	if n <= 0 {
		tk := ticket{seq: b.s.taken}
		b.mu.Unlock()
		return tk, nil
	}
	t := b.now()
	// The priority is read only when it matters: when the wait queues, or
	// when a reserve needs to know whose it is. A wait granted at once on
	// a bucket without a reserve never reads it.
	prio, known := transport.PriorityDefault, false
	reserved := false // this wait starts the reserve's active spell
	if b.reserve.tokens > 0 {
		prio, known = transport.PriorityOf(ctx), true
		if prio >= b.reserve.level {
			reserved = t >= b.reserveEnds
			b.reserveEnds = t + float64(b.reserve.hold)
		}
	}
	if b.head == nil {
		b.s.settle(t, n)
		at := b.s.readyAt(t, n)
		if b.reserve.tokens > 0 {
			at = b.due(&b.s, t, n, prio)
		}
		if at <= t {
			b.s.take(t, n)
			tk := b.granted(n, track)
			b.mu.Unlock()
			return tk, nil
		}
	}
	if !known {
		prio = transport.PriorityOf(ctx)
	}
	eta := b.eta(t, n, prio)
	if eta-t >= maxWait {
		b.mu.Unlock()
		return ticket{}, ErrTooLong
	}
	deadline := inf
	if dl, ok := ctx.Deadline(); ok {
		deadline = b.at(dl)
		if late(eta, deadline) {
			b.mu.Unlock()
			return ticket{}, transport.ErrDeadline
		}
	}
	w := b.pool.Get().(*waiter)
	w.n, w.deadline, w.track, w.prio = n, deadline, track, prio
	b.q.push(w)
	b.repick(t)
	if w == b.head || reserved {
		// A new head, or a reserve that now holds back the head: either
		// way the head's time has changed.
		b.dispatch(t)
	}
	b.mu.Unlock()

	select {
	case <-w.ch:
		tk, refused := ticket{seq: w.taken}, w.refused
		b.release(w)
		if refused {
			return ticket{}, transport.ErrDeadline
		}
		return tk, nil
	case <-done:
	}
	b.mu.Lock()
	switch {
	case w.refused:
		<-w.ch
	case w.granted: // granted as ctx ended: give the tokens back
		<-w.ch
		t := b.now()
		b.s.refund(t, w.n)
		if w.track {
			b.answered(w.n)
			b.unsent -= w.n
		}
		b.dispatch(t)
	default:
		head, levels := b.head, len(b.q.levels)
		b.q.unlink(w)
		if w == head {
			b.head = nil
		}
		// Its leaving may change who is next: the head, or, across levels,
		// the oldest waiter that aging would serve.
		if w == head || levels > 1 {
			t := b.now()
			b.repick(t)
			if b.head != head {
				b.dispatch(t)
			}
		}
	}
	b.mu.Unlock()
	b.release(w)
	return ticket{}, context.Cause(ctx)
}

// granted counts a grant of n tokens, taken already. b.mu must be held.
func (b *Bucket) granted(n float64, track bool) ticket {
	tk := ticket{seq: b.s.taken}
	if track {
		b.tracked += int64(n)
		b.unsent += n
	}
	return tk
}

// sending marks tk's grant of n tokens as handed on, and notes what else
// was granted and is not sent, or not answered.
func (b *Bucket) sending(tk *ticket, n float64) {
	b.mu.Lock()
	b.sendingLocked(tk, n)
	b.mu.Unlock()
}

// sendingLocked is sending with b.mu held.
func (b *Bucket) sendingLocked(tk *ticket, n float64) {
	b.unsent = max(0, b.unsent-n)
	tk.unsent, tk.flying = b.unsent, max(0, float64(b.inFlightLocked())-n)
}

// inFlightLocked is the tokens of tracked grants still in flight. b.mu
// must be held.
func (b *Bucket) inFlightLocked() int64 { return b.tracked - b.back.Load() }

// send is Limit's turn: a tracked wait for n tokens ([Bucket.wait]) whose
// grant is handed on at once ([Bucket.sending]); it returns when that was.
// A grant at once, on a bucket in this process without a reserve, reads
// the clock once, under the lock that grants it, and takes the lock once,
// where a wait and a send apart cost two of each. The bucket's state is
// tried on a copy, so that a wait not granted at once goes to wait as if
// nothing had been tried; any other wait goes there too.
func (b *Bucket) send(ctx context.Context, n float64) (ticket, time.Time, error) {
	if b.link == nil && n > 0 && b.reserve.tokens == 0 {
		if done := ctx.Done(); done != nil {
			select {
			case <-done:
				return ticket{}, time.Time{}, context.Cause(ctx)
			default:
			}
		}
		b.mu.Lock()
		if b.head == nil {
			now, t := b.nowLocked()
			s := b.s
			s.settle(t, n)
			if s.readyAt(t, n) <= t {
				b.s = s
				b.s.take(t, n)
				tk := b.granted(n, true)
				b.sendingLocked(&tk, n)
				b.mu.Unlock()
				return tk, now, nil
			}
		}
		b.mu.Unlock()
	}
	tk, err := b.wait(ctx, n, true)
	if err != nil {
		return ticket{}, time.Time{}, err
	}
	b.sending(&tk, n)
	return tk, time.Now(), nil
}

// flying reports the tokens of tracked grants still in flight. It takes
// b.mu: only a refusal asks.
func (b *Bucket) flying() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return float64(b.inFlightLocked())
}

// answered ends a tracked grant of n tokens, which it follows: its answer
// came back, or it was given back. It takes no lock.
func (b *Bucket) answered(n float64) { b.back.Add(int64(n)) }

// eta is when a request of n tokens and priority prio joining the queue
// at t would be granted if nothing changed: exact for requests of one
// size on one level, an estimate when a server window ends part-way
// through requests of mixed sizes, and, across levels, as exact as
// queue.ahead. Lower levels do not delay it but by the share aging gives
// them, and the reserve kept from those.
func (b *Bucket) eta(t, n float64, prio int) float64 {
	s := &b.s
	ahead, aged := b.q.ahead(prio)
	rest := ahead + n // what is left for the bucket's own pacing
	if b.q.saved != 0 {
		// What the heads ahead saved before they were passed, an older
		// waiter of a lower level that aging serves first among them; the
		// head's own is in the bucket's count already.
		rest -= b.q.savedAhead(prio, b.head)
		if aged != nil && aged != b.head {
			rest -= aged.lvl.saved
		}
	}
	base := s.base
	if h := b.head; h != nil && len(b.q.levels) > 0 && prio > b.q.levels[0].prio &&
		s.every > 0 && !s.fresh && !s.windowed(t) &&
		!owed(b.q.share, b.q.passed, b.q.aged, b.q.oldest().n) {
		// It passes the head, which keeps what it saved beyond the burst
		// (park): it finds the burst, no more.
		base = max(base+h.lvl.saved*s.every, t-s.burst*s.every)
	}
	at := b.etaOf(t, n, ahead, rest, base)
	if r := &b.reserve; r.tokens > 0 && t < b.reserveEnds {
		kept := at
		switch res := min(r.tokens, s.burst); {
		case prio < r.level:
			// The reserve is kept from it, as due keeps it from a head:
			// until it lapses, and no longer.
			kept = b.etaOf(t, n, ahead, rest+res, base)
		case aged != nil && b.q.levels[len(b.q.levels)-1].prio < r.level:
			// Aging serves lower waits before it, and the reserve is kept
			// from them: it comes after the last of them, foretold as if
			// that one came just before it (late by what comes between,
			// at most the reserve's time, never early).
			kept = b.etaOf(t, n, ahead, rest-n+res, base)
		}
		at = max(at, min(kept, b.reserveEnds))
	}
	return at
}

// etaOf is eta's turn for a request of n tokens, behind ahead tokens,
// when rest tokens are left for the bucket's own pacing from base (the
// bucket's, unless the request passes the head).
func (b *Bucket) etaOf(t, n, ahead, rest, base float64) float64 {
	s := &b.s
	need := s.taken + rest // what taken reaches with this grant
	if s.windowed(t) {
		last := s.winCap
		if t < s.nextUntil {
			last = s.nextCap
		}
		rest = need - max(s.taken, last)
	}
	if t < s.winUntil {
		if need <= s.winCap {
			return t
		}
		t = s.winUntil
	}
	if t < s.nextUntil {
		if need <= s.nextCap {
			return t
		}
		t = s.nextUntil
	}
	if s.fresh {
		first, from := n, t
		if ahead > 0 && b.head != nil {
			// The head saves from the end of the window it waited out.
			first, from = b.head.n, s.freshSince(t)
		}
		return max(t, from+max(0, rest-min(first, s.burst))*s.every)
	}
	return max(t, base+rest*s.every)
}

// due is when the settled head, of n tokens and priority prio, may be
// granted on state s, not before t: when s holds n tokens, and, below an
// active reserve, the reserve too until it lapses. The hot paths call it
// only when the bucket has a reserve, and readyAt, which inlines, when not.
func (b *Bucket) due(s *state, t, n float64, prio int) float64 {
	at := s.readyAt(t, n)
	r := &b.reserve
	if r.tokens == 0 || prio >= r.level || t >= b.reserveEnds {
		return at
	}
	// A reserve beyond the burst would hold back every grant, not once.
	kept := s.readyAt(t, n+min(r.tokens, s.burst))
	return max(at, min(kept, b.reserveEnds))
}

// repick makes the queue's pick the head, settled for at t if it is new.
// A head passed while it is still queued keeps what it saved beyond the
// burst (see level.saved). b.mu must be held.
func (b *Bucket) repick(t float64) {
	if h := b.q.pick(); h != b.head {
		if old := b.head; old != nil && old.lvl != nil {
			b.park(t, old)
		}
		b.head = h
		if h != nil {
			b.s.settle(t, h.n)
			b.unpark(h)
		}
	}
}

// park puts aside, as the head w is passed at t, what it saved beyond the
// burst: the bucket then holds no more than its burst for the waiters
// that passed w, as it would without w, and w gets the rest back when it
// is the head again (unpark). Without this a request larger than the
// burst would lose its savings each time a higher level passed it, and a
// sparse stream of higher requests would hold it for as long as the
// stream lasts.
func (b *Bucket) park(t float64, w *waiter) {
	s, lv := &b.s, w.lvl
	if s.every == 0 || s.fresh || s.windowed(t) {
		b.q.saved -= lv.saved
		lv.saved = 0
		return
	}
	// What the bucket holds beside what w saved before (unpark added it).
	held := (t-s.base)/s.every - lv.saved
	if ex := held - s.burst; ex > 0 {
		lv.saved += ex
		b.q.saved += ex
		held = s.burst
	}
	s.base = t - held*s.every
}

// unpark gives the new head h, settled, what it saved before it was
// passed. Its level keeps the count, which park takes out again if h is
// passed once more: only what the bucket saved beyond the burst since
// then is added to it, so the waiters that pass h never see its savings.
func (b *Bucket) unpark(h *waiter) {
	if b.q.saved == 0 {
		return
	}
	if lv := h.lvl; lv.saved > 0 {
		b.s.base -= lv.saved * b.s.every
	}
}

// dispatch grants every waiter that is due at t, in order, and arms the
// timer for the next one. b.mu must be held.
func (b *Bucket) dispatch(t float64) {
	for w := b.head; w != nil; w = b.head {
		if b.s.fresh && !b.s.windowed(t) {
			b.s.settle(b.s.freshSince(t), w.n)
		}
		at := b.s.readyAt(t, w.n)
		if b.reserve.tokens > 0 {
			at = b.due(&b.s, t, w.n, w.prio)
		}
		if at > t {
			b.arm(t, at)
			return
		}
		b.s.take(t, w.n)
		b.q.grant(w)
		w.granted, w.taken = true, b.granted(w.n, w.track).seq
		w.ch <- struct{}{}
		// The next head, settled (repick, by hand: this loop is the
		// queue's hot path).
		if b.head = b.q.pick(); b.head != nil {
			b.s.settle(t, b.head.n)
			b.unpark(b.head)
		}
	}
	b.disarm()
}

// maxWait is MaxWait in the bucket's float nanoseconds.
const maxWait = float64(MaxWait)

// late reports whether a grant due at at comes too late for a deadline:
// timers fire on whole nanoseconds, and a grant at the deadline itself
// leaves the request no time to be sent.
func late(at, deadline float64) bool { return math.Ceil(at) >= deadline }

// timerDelay is how long from t a timer for at is set: never less than a
// nanosecond, and never more than a timer can wait (a queue that a slower
// rate pushed beyond MaxWait wakes then, and sets its timer again).
func timerDelay(t, at float64) time.Duration {
	d := math.Ceil(at - t)
	if d >= maxWait { // beyond an int64: converting would wrap around
		return MaxWait
	}
	return time.Duration(max(d, 1))
}

func (b *Bucket) arm(t, at float64) {
	if at == b.timerAt {
		return
	}
	b.timerAt = at
	d := timerDelay(t, at)
	if b.timer == nil {
		b.timer = time.AfterFunc(d, b.fire)
		return
	}
	b.timer.Reset(d)
}

func (b *Bucket) disarm() {
	if b.timerAt >= 0 {
		b.timer.Stop()
		b.timerAt = -1
	}
}

func (b *Bucket) fire() {
	b.mu.Lock()
	b.timerAt = -1
	b.dispatch(b.now())
	b.mu.Unlock()
}

// expire refuses, at once, every queued waiter whose turn now falls at or
// after its deadline, playing the queue forward, in the order it would
// serve it, on a copy of the state. Called when the bucket slows down (a
// pause, a lower rate, a smaller window).
func (b *Bucket) expire(t float64) {
	if b.q.deadlines == 0 {
		return
	}
	sim, at := b.s, t
	settled := b.head
	b.q.simulate(func(w *waiter) bool {
		saved := 0.0 // what w saved before it was passed, as unpark gives it back
		if w != settled || (sim.fresh && !sim.windowed(at)) {
			from := at
			if w == settled { // queued through the window, as dispatch settles it
				from = sim.freshSince(at)
			}
			sim.settle(from, w.n)
			// A level's savings are its head's: the waiters behind it on
			// its level saved nothing.
			if lv := w.lvl; w != settled && w == lv.head && lv.saved > 0 {
				saved = lv.saved * sim.every
				sim.base -= saved
			}
		}
		due := b.due(&sim, at, w.n, w.prio)
		if sim.fresh && !sim.windowed(due) {
			// Its turn comes after the window, and it is not settled yet:
			// dispatch settles it then, from the window's end, and reads
			// its turn again from what that gives it (its own tokens, up
			// to the burst, not a reserve kept from it too), before it
			// takes them.
			sim.settle(sim.freshSince(due), w.n)
			due = b.due(&sim, due, w.n, w.prio)
		}
		if late(due, w.deadline) {
			sim.base += saved // refused, it takes its savings with it
			return false
		}
		at = due
		sim.take(at, w.n)
		settled = nil // the next waiter becomes the head after this grant
		return true
	})
	if len(b.q.rest) == 0 {
		return
	}
	for i, w := range b.q.rest {
		b.q.rest[i] = nil
		b.q.unlink(w)
		if w == b.head {
			b.head = nil
		}
		w.refused = true
		w.ch <- struct{}{}
	}
	b.q.rest = b.q.rest[:0]
	b.repick(t)
}

// Pause holds every waiter, and refuses every TryTake, until until: the
// server said stop, and one refusal stops the whole key, not one request.
// At until the first waiter passes at once and the rest are paced from
// there, the bucket having saved nothing during the pause. A pause never
// shortens one already running; a time in the past does nothing.
func (b *Bucket) Pause(until time.Time) {
	b.pauseHere(until)
	b.tellStore(storeNews{pause: until})
}

// pauseHere is Pause in this process only: the store is told apart
// ([Bucket.tellStore]), so that a caller holding a lock of its own does not
// hold it across the store's round trip.
func (b *Bucket) pauseHere(until time.Time) {
	if b.link != nil {
		b.link.hold(until)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t, u := b.now(), b.at(until)
	if u <= t || (b.s.windowed(t) && b.s.winCap == -inf && max(b.s.winUntil, b.s.nextUntil) >= u) {
		return
	}
	// Nothing at all before u, even tokens given back meanwhile.
	b.s.window(-inf, u, 0, 0)
	b.q.dropSaved()
	b.expire(t)
	b.dispatch(t)
}

// SetRemaining tells the bucket what the server counts: tokens may be taken
// until until, and no more. Before until the bucket grants exactly those,
// at once and regardless of its own rate (a server that counts in windows
// is best used by spending the window), and then nothing; at until it
// resumes its own pacing as after a [Bucket.Pause]. It replaces any window
// or pause set before, since the server's latest count is the truth. A time
// not in the future does nothing.
func (b *Bucket) SetRemaining(tokens float64, until time.Time) {
	if math.IsNaN(tokens) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.windows(b.s.taken+tokens, until, 0, time.Time{}, b.now())
}

// windows sets a server window, and the one after it, as limits on the
// bucket's count of tokens granted, at t (as b.at gives it). b.mu must be
// held.
func (b *Bucket) windows(limit float64, until time.Time, nextLimit float64, next time.Time, t float64) {
	u := b.at(until)
	if u <= t {
		return
	}
	nu := 0.0
	if !next.IsZero() {
		nu = b.at(next)
	}
	b.s.window(limit, u, nextLimit, nu)
	b.q.dropSaved()
	b.expire(t)
	b.dispatch(t)
}

// serverLevel is what Limit reads in an answer of a server that is itself a
// bucket: the bucket may have granted limit tokens in all at at, when the
// server counted, and refills at its own rate from there. That replaces
// the bucket's own count: the server's is the truth, and it is whole (the
// server floors what it holds), so it never overstates. A pause is kept.
// answered is when the answer came, as Limit read it: the clock is not
// read again.
func (b *Bucket) serverLevel(limit float64, at, answered time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.at(answered)
	if b.s.windowed(t) && b.s.winCap == -inf {
		return
	}
	b.s.winUntil, b.s.nextUntil, b.s.fresh = 0, 0, false
	if b.s.every == 0 { // refilled at once, whatever the server counted
		b.s.base = t
	} else {
		held := limit - b.s.taken + max(0, t-b.at(at))/b.s.every
		b.s.base = t - held*b.s.every
	}
	b.q.dropSaved()
	b.expire(t)
	b.dispatch(t)
}

// serverCount is what Limit reads in an answer: the bucket may have granted
// limit tokens in all until until, and nextLimit until next. A pause is
// kept, as serverLevel keeps it: an answer that comes during a pause is
// that of a request sent before the 429 that started it, and its count,
// older than the refusal, would let the bucket send into it. answered is
// when the answer came, as Limit read it: the clock is not read again, and
// a pause is judged at the answer's arrival.
func (b *Bucket) serverCount(limit float64, until time.Time, nextLimit float64, next, answered time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.at(answered)
	if b.s.winCap == -inf && t < b.s.winUntil {
		return
	}
	b.windows(limit, until, nextLimit, next, t)
}

// SetRate changes the rate at once, for the waiters already queued as well
// as those to come; the tokens the bucket holds are kept (a bucket leaving
// the infinite rate holds its burst). An unknown rate is ignored; a rate
// slower than one token every [MaxInterval] is taken as that. Unless
// [WithBurst] fixed it, the burst follows the rate. A bucket in a store
// ([WithStore]) writes the rate there too, for every process; a rate set
// while the last is on its way is written after it, so the store is left
// with the latest.
func (b *Bucket) SetRate(r Rate) {
	if b.setRateHere(r) {
		b.tellStore(storeNews{rate: true})
	}
}

// setRateHere is SetRate in this process only, as pauseHere is Pause; it
// reports whether the rate was set.
func (b *Bucket) setRateHere(r Rate) bool {
	if !r.Known() {
		return false
	}
	ps := r.PerSecond()
	every := interval(ps)
	b.mu.Lock()
	t := b.now()
	slower := every > b.s.every
	if !b.burstFixed {
		b.s.burst = defaultBurst(ps)
	}
	b.s.setEvery(t, every)
	if slower {
		b.expire(t)
	}
	b.dispatch(t)
	b.mu.Unlock()
	return true
}

// Rate reports the current rate, in the period the bucket was made with.
func (b *Bucket) Rate() Rate {
	b.mu.Lock()
	every := b.s.every
	b.mu.Unlock()
	return in(1e9/every, b.per)
}

// Burst reports the most tokens the bucket holds.
func (b *Bucket) Burst() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s.burst
}

// Tokens reports the tokens the bucket holds now: what it would grant at
// once if nobody were waiting (during a server window, what the window has
// left; during a pause, 0).
func (b *Bucket) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.now()
	if b.head != nil && !b.s.windowed(t) && !b.s.fresh && b.s.every > 0 {
		return max(0, (t-b.s.base)/b.s.every) // saving for the head
	}
	return b.s.tokens(t)
}

// Waiting reports how many calls of [Bucket.Wait] are queued.
func (b *Bucket) Waiting() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.link != nil {
		return b.link.waiting
	}
	return b.q.n
}
