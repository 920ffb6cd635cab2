package bucket

import "math"

// state is a bucket's arithmetic, apart from its queue and its lock, so that
// the queue's future can be played forward on a copy (see Bucket.expire)
// with exactly the rules the bucket itself follows.
//
// Times are nanoseconds since the bucket's epoch, as float64: exact to the
// nanosecond for 104 days, and token arithmetic needs fractions anyway.
// every is 0 for the infinite rate (then burst may be +Inf), and at most
// MaxInterval.
//
// The bucket is a virtual clock (GCRA's theoretical arrival time): base is
// the time at which the bucket was, or will be, empty, so it holds
// (t-base)/every tokens at time t, at most burst. Taking n tokens moves base
// n*every later. Nothing ticks: an idle bucket is a few numbers.
type state struct {
	every float64 // nanoseconds per token
	burst float64 // most tokens the bucket holds
	base  float64 // when the bucket is empty

	// fresh: the next request passes at once, whatever the bucket holds (up
	// to burst), and the rest are paced from it. A new bucket is fresh, so it
	// neither starts with a full burst, which a server whose own bucket is
	// not full would refuse, nor makes its first caller wait; so is a bucket
	// at the end of a pause, when the server said one request would pass.
	fresh bool

	taken float64 // tokens granted so far, net of refunds

	// Server windows, counted in taken: before winUntil, taken may not pass
	// winCap, and the bucket's own refill is suspended (base is the end of
	// the last window), because the server's count is the truth and the
	// bucket's a guess. At winUntil the next window, if any (nextUntil >
	// winUntil), takes over. A pause is a window with nothing left.
	winUntil, winCap   float64
	nextUntil, nextCap float64
}

// inf is the deadline of a wait that has none.
const inf = math.MaxFloat64

// windowed reports whether a server window holds at t.
func (s *state) windowed(t float64) bool { return t < s.winUntil || t < s.nextUntil }

// capAt is the cap of the server window at t; windowed(t) must hold.
func (s *state) capAt(t float64) float64 {
	if t < s.winUntil {
		return s.winCap
	}
	return s.nextCap
}

// settle prepares the state for a request of n tokens that has just become
// the head of the queue (or finds the queue empty) at time t: it caps what
// the bucket saved while idle at burst, or, when fresh, gives it what one
// request needs. It is not called again while that request waits, so a
// request larger than burst saves up its full share instead of failing
// forever.
func (s *state) settle(t, n float64) {
	if s.windowed(t) {
		return
	}
	floor := s.full(t)
	if s.fresh {
		s.fresh = false
		m := min(n, s.burst)
		s.base = min(max(s.base, floor), t-m*s.every)
		// t-m*every is rounded to the nearest float, which may put the
		// request's time, base+m*every, a hair after t: a bucket that
		// promised this request at once would then refuse it. One float
		// lower is enough to undo a rounding of half a float.
		if s.base+m*s.every > t {
			s.base = math.Nextafter(s.base, math.Inf(-1))
		}
		return
	}
	s.base = max(s.base, floor)
}

// freshSince is when the head of a fresh bucket's queue began to save, as
// of t: the end of the server window that made the bucket fresh, once it
// has passed (the head waited it out, and saves from its end, as readyAt
// foretold its turn), else t.
func (s *state) freshSince(t float64) float64 {
	if s.winUntil > 0 && s.winUntil < t {
		return s.winUntil
	}
	return t
}

// full is the base of a bucket that holds its whole burst at t.
func (s *state) full(t float64) float64 {
	if s.every == 0 {
		return t // the infinite rate holds everything; burst may be +Inf
	}
	return t - s.burst*s.every
}

// readyAt is the earliest time, not before t, at which the settled head of
// n tokens may be granted.
func (s *state) readyAt(t, n float64) float64 {
	if t < s.winUntil {
		if s.taken+n <= s.winCap {
			return t
		}
		t = s.winUntil
	}
	if t < s.nextUntil {
		if s.taken+n <= s.nextCap {
			return t
		}
		t = s.nextUntil
	}
	if s.fresh { // not settled yet: it will be at t
		return t + max(0, n-s.burst)*s.every
	}
	return max(t, s.base+n*s.every)
}

// take grants n tokens at time t, which readyAt allowed.
func (s *state) take(t, n float64) {
	s.taken += n
	if s.windowed(t) {
		return
	}
	if s.fresh {
		s.settle(t, n)
	}
	s.base += n * s.every
}

// refund gives back n tokens taken at or before t by a request that did not
// go after all.
func (s *state) refund(t, n float64) {
	s.taken -= n
	if !s.windowed(t) {
		s.base -= n * s.every
	}
}

// tokens is what the bucket holds at t (with no request waiting).
func (s *state) tokens(t float64) float64 {
	if s.windowed(t) {
		return max(0, s.capAt(t)-s.taken)
	}
	if s.every == 0 {
		if s.base > t {
			return 0
		}
		return math.Inf(1)
	}
	return min(s.burst, max(0, (t-s.base)/s.every))
}

// setEvery changes the rate at t, keeping the tokens the bucket holds (or
// owes), so that a new rate applies from now on to everything not yet
// granted; a pause or a server window ends when it did. A bucket leaving
// the infinite rate holds its whole burst, which must be set first.
func (s *state) setEvery(t, every float64) {
	old := s.every
	s.every = every
	switch {
	case old == 0 && s.base <= t:
		s.base = s.full(t)
	case s.windowed(t) || old == 0:
		// Empty until base, the end of a pause or of a server window: a
		// time, which the rate does not move.
	default:
		// What the bucket holds, or owes (base ahead of t, after a
		// correction or a server's count under nothing), in tokens at
		// the new rate.
		s.base = t - (t-s.base)/old*every
	}
}

// window starts a server window: taken may reach limit before until; then,
// if next > until, nextLimit before next. The bucket's own pacing resumes
// after the last: fresh after a single window, when the server holds at
// least one request again; empty after the second, which spent it.
func (s *state) window(limit, until, nextLimit, next float64) {
	s.winCap, s.winUntil = limit, until
	s.nextCap, s.nextUntil = nextLimit, next
	if next <= until {
		s.nextUntil = 0
	}
	s.base = max(until, s.nextUntil)
	s.fresh = s.nextUntil == 0
}
