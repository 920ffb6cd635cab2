package bucket

import (
	"math"
	"time"
)

// WithUseBasedLimit tells [Limit] that the server grants a limit that grows
// with use, as Together's dynamic limit does: about factor times the key's
// successful rate over the past span, never below base. (Together: factor
// 2, span one hour, base 60 requests a minute; its limit is also capped,
// which the limiter learns from its 429s, and enforced per second.)
//
// A limit that grows only as fast as it is used punishes caution: a client
// that holds back is granted less. So Limit counts what the server accepted
// and predicts the limit from the rule, as TCP BBR models the bottleneck
// instead of probing blindly, and sends at it. The documentation leaves open
// over what span the rate is taken while the key is younger than span (the
// whole span, or the time the key has been in use, where the limit grows far
// sooner), so both readings are predicted, and the higher of those not set
// aside is a floor the rate does not drop under after a 429, nor climb
// from slowly; only the few seconds' hold after the first 429 of a quiet
// spell, which tests whether the limit lies just below the rate refused,
// stay under it. The server's answers judge them: a 429 at a rate within a
// tenth under a prediction, or a limit measured below it, says the server
// grants less (as a server with a fixed limit, or a cap, does) and sets
// that prediction aside for ten minutes.
// With several processes sharing the key through a [Store], each predicts
// from what it sent, which the rate they share through the store corrects.
//
// A factor that is not positive, or a span that is not, turns the rule off.
func WithUseBasedLimit(factor float64, span time.Duration, base Rate) LimitOption {
	return func(c *limitConfig) {
		c.grows = nil
		if factor > 0 && span > 0 {
			c.grows = &useRule{factor: factor, span: span, base: base.PerSecond()}
		}
	}
}

// useRule is a limit that grows with use: factor times the successful rate
// over span, at least base (tokens a second).
type useRule struct {
	factor float64
	span   time.Duration
	base   float64
}

// useSlots is how many slots the success counter keeps over the rule's
// span.
const useSlots = 60

// useTracker predicts a use-based limit from what the server accepted.
type useTracker struct {
	rule  useRule
	first time.Time // the first success
	total float64   // every success since first
	idx   [useSlots]int64
	n     [useSlots]float64
	// The slot the latest success fell in: its number, and the Unix
	// nanoseconds it spans, [lo, hi). A success in the same slot, as
	// nearly every one is, is counted with no division.
	last, lo, hi int64
	// The sum of the slots after slot sumLo, kept once overSpan counted it
	// (kept): a success is added as it comes, so that reading the rule
	// over the span, as nearly every answer does while the rule is read,
	// loops over the slots only when the span's first slot moves on (once
	// a slot's time) or a slot it counted is reused. The counts are whole
	// numbers (requests, tokens), so the sum is the loop's exactly.
	sumLo int64
	sum   float64
	kept  bool
	// Until when each reading is set aside: the server refused below it.
	spanOff, inUseOff time.Time
}

func newUseTracker(r *useRule) *useTracker {
	if r == nil {
		return nil
	}
	return &useTracker{rule: *r}
}

// slot is the time each of the useSlots slots counts: at least a
// nanosecond, so that a span shorter than useSlots nanoseconds (positive,
// so the rule is on) divides by a slot, not by zero.
func (u *useTracker) slot() time.Duration { return max(u.rule.span/useSlots, 1) }

// succeeded counts n tokens the server accepted of a request sent at sent.
func (u *useTracker) succeeded(sent time.Time, n float64) {
	if u.first.IsZero() || sent.Before(u.first) {
		u.first = sent
	}
	u.total += n
	ns := sent.UnixNano()
	i := u.last
	if ns < u.lo || ns >= u.hi {
		slot := int64(u.slot())
		i = ns / slot
		u.last, u.lo, u.hi = i, i*slot, i*slot+slot
	}
	j := int(i % useSlots)
	if u.idx[j] != i {
		if u.idx[j] > u.sumLo { // a slot the sum counted: counted again
			u.kept = false
		}
		u.idx[j], u.n[j] = i, 0
	}
	u.n[j] += n
	if i > u.sumLo {
		u.sum += n
	}
}

// overSpan is the rule's limit read over the whole span: the floor.
func (u *useTracker) overSpan(now time.Time) float64 {
	lo := now.Add(-u.rule.span).UnixNano() / int64(u.slot())
	if !u.kept || lo != u.sumLo {
		var sum float64
		for j := range u.idx {
			if u.idx[j] > lo {
				sum += u.n[j]
			}
		}
		u.sumLo, u.sum, u.kept = lo, sum, true
	}
	return max(u.rule.base, u.rule.factor*u.sum/u.rule.span.Seconds())
}

// inUse is the rule's limit read over the time the key has been in use,
// while that is shorter than the span (at least a minute, as a server
// would not divide by less).
func (u *useTracker) inUse(now time.Time) float64 {
	if u.first.IsZero() {
		return u.rule.base
	}
	used := now.Sub(u.first)
	if used >= u.rule.span {
		return u.overSpan(now)
	}
	return max(u.rule.base, u.rule.factor*u.total/max(used, time.Minute).Seconds())
}

// predict is the rate the rule says the server allows now, by the
// readings not set aside; 0 when both are.
func (u *useTracker) predict(now time.Time) float64 {
	p := 0.0
	if !now.Before(u.spanOff) {
		p = u.overSpan(now)
	}
	if !now.Before(u.inUseOff) {
		p = max(p, u.inUse(now))
	}
	return p
}

// judge weighs a refusal at rate: a reading of the rule at or a little
// above rate said the server allows it, and is wrong (a server with a
// fixed limit, or at its cap, refuses what the rule predicts); it is set
// aside for a while. A refusal above a reading (a probe beyond it), or far
// below, says nothing of it. It reports whether a reading was set aside.
func (u *useTracker) judge(now time.Time, rate float64) bool {
	off := now.Add(min(u.rule.span, setAside))
	wrong := false
	if r := rate / u.inUse(now); r >= refused && r <= 1 {
		u.inUseOff, wrong = off, true
	}
	if r := rate / u.overSpan(now); r >= refused && r <= 1 {
		u.spanOff, wrong = off, true
	}
	return wrong
}

// floorOf returns r raised to what the rule predicts (a little under it),
// within [lo, hi].
func (u *useTracker) floorOf(now time.Time, r, lo, hi float64) float64 {
	if u == nil {
		return r
	}
	p := u.predict(now) * predicted
	if p <= r || math.IsNaN(p) {
		return r
	}
	return clampRate(p, lo, hi)
}

// minJudged is the fewest tokens a measure must count to judge the
// readings: fewer, and one token more or less moves it by a tenth.
const minJudged = 10

// refused is how close to a reading the rate refused must be to judge it
// wrong; setAside is how long it is set aside then.
const (
	refused  = 0.9
	setAside = 10 * time.Minute
)

// predicted is how close to a predicted limit the rate goes: the server's
// count and the client's differ by what is in flight.
const predicted = 0.98
