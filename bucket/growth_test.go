package bucket

import (
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// feed counts one success every 100ms in [from, to) since t0.
func feed(u *useTracker, t0 time.Time, from, to time.Duration) {
	for at := from; at < to; at += 100 * time.Millisecond {
		u.succeeded(t0.Add(at), 1)
	}
}

// togetherRule is Together's: twice the successful rate over the past
// hour, at least one request a second.
var togetherRule = useRule{factor: 2, span: time.Hour, base: 1}

func TestUseTrackerReadsTheRuleOverTheTimeInUseAndOverTheSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUseTracker(&togetherRule)
		t0 := time.Now()
		assert.Equal(t, 1.0, u.inUse(t0), "nothing accepted: the base")
		assert.Equal(t, 1.0, u.overSpan(t0))

		feed(u, t0, 0, 30*time.Second) // 300
		assert.InDelta(t, 10, u.inUse(t0.Add(30*time.Second)), 1e-9, "2 × 300 over a minute, the least time in use")
		assert.InDelta(t, 5, u.inUse(t0.Add(2*time.Minute)), 1e-9, "2 × 300 over 2 minutes")
		assert.Equal(t, 1.0, u.overSpan(t0.Add(2*time.Minute)), "2 × 300 over an hour is below the base")
		assert.InDelta(t, 5, u.predict(t0.Add(2*time.Minute)), 1e-9, "the higher reading")

		feed(u, t0, 30*time.Minute, 35*time.Minute) // 3000 more
		at := t0.Add(40 * time.Minute)
		assert.InDelta(t, 2*3300/(40*60.0), u.inUse(at), 1e-9)
		assert.InDelta(t, 2*3300/3600.0, u.overSpan(at), 1e-9)

		// From an hour on, the time in use is the span: the first
		// minute's 300 are forgotten an hour after their minute.
		at = t0.Add(time.Hour)
		assert.InDelta(t, 2*3000/3600.0, u.overSpan(at), 1e-9)
		assert.Equal(t, u.overSpan(at), u.inUse(at))
		assert.InDelta(t, 2*3300/3600.0, u.overSpan(at.Add(-time.Nanosecond)), 1e-9, "not a nanosecond before")
	})
}

func TestUseTrackerSetsAsideAReadingRefusedAtItsRate(t *testing.T) {
	// 10 a second for 10 minutes: the time in use reads 20/s, the hour
	// 2 × 6000 / 3600.
	const inUse, overSpan = 20.0, 2 * 6000 / 3600.0
	for _, tc := range []struct {
		name        string
		rate        float64
		inUseAside  bool
		bothReadOff bool
	}{
		{"at the reading", inUse, true, false},
		{"at 0.9 of it", 0.9 * inUse, true, false},
		{"below 0.9 of it: a measure of something else", 0.89 * inUse, false, false},
		{"above it: a probe beyond it", 1.01 * inUse, false, false},
		{"at the hour's reading too", 0.95 * overSpan, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				u := newUseTracker(&togetherRule)
				t0 := time.Now()
				feed(u, t0, 0, 10*time.Minute)
				now := t0.Add(10 * time.Minute)
				require.InDelta(t, inUse, u.inUse(now), 1e-9)
				require.InDelta(t, overSpan, u.overSpan(now), 1e-9)
				if tc.bothReadOff {
					u.judge(now, 0.95*inUse)
				}
				u.judge(now, tc.rate)
				switch {
				case tc.bothReadOff:
					assert.Zero(t, u.predict(now), "both readings set aside")
				case tc.inUseAside:
					assert.InDelta(t, overSpan, u.predict(now), 1e-9, "only the hour's reading left")
				default:
					assert.InDelta(t, inUse, u.predict(now), 1e-9, "nothing set aside")
				}
			})
		})
	}
}

func TestUseTrackerSetsAReadingAsideForTenMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		u := newUseTracker(&togetherRule)
		t0 := time.Now()
		feed(u, t0, 0, 10*time.Minute)
		u.judge(t0.Add(10*time.Minute), 19)
		feed(u, t0, 10*time.Minute, 20*time.Minute)
		end := t0.Add(20 * time.Minute)
		assert.InDelta(t, 2*12000/3600.0, u.predict(end.Add(-time.Nanosecond)), 1e-9, "still aside: the hour's reading")
		assert.InDelta(t, 20, u.predict(end), 1e-9, "ten minutes on: the time in use's again")
	})
}

func TestUseTrackerFloorsARate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var none *useTracker
		assert.Equal(t, 3.0, none.floorOf(time.Now(), 3, 0.1, 100), "no rule: the rate as it is")

		u := newUseTracker(&togetherRule)
		t0 := time.Now()
		feed(u, t0, 0, 10*time.Minute)
		now := t0.Add(10 * time.Minute) // the rule predicts 20/s
		assert.InDelta(t, 0.98*20, u.floorOf(now, 3, 0.1, 100), 1e-9, "raised to a little under the prediction")
		assert.Equal(t, 19.7, u.floorOf(now, 19.7, 0.1, 100), "above that: kept")
		assert.Equal(t, 12.0, u.floorOf(now, 3, 0.1, 12), "no higher than the ceiling")
		u.judge(now, 20)
		u.judge(now, 0.95*2*6000/3600)
		assert.Equal(t, 3.0, u.floorOf(now, 3, 0.1, 100), "both readings set aside: nothing to raise to")
	})
}

// nextSuccess is a random instant for the next success after one at now,
// for a rule of the span given: mostly a small step forward, some far
// ahead, some back, some at a slot's bounds.
func nextSuccess(r *rand.Rand, now time.Time, span time.Duration) time.Time {
	slot := int64(span / useSlots)
	switch k := r.IntN(100); {
	case k < 5:
		return now.Add(time.Duration(r.Int64N(int64(2 * span))))
	case k < 10:
		return now.Add(-time.Duration(r.Int64N(3 * slot)))
	case k < 20: // the first instant of the next slot, or the last of this one
		return time.Unix(0, (now.UnixNano()/slot+1)*slot-r.Int64N(2))
	}
	return now.Add(time.Duration(r.Int64N(slot / 4)))
}

// TestUseTrackerSlotsAgreeWithDivision holds the tracker, which finds the
// slot of a success with no division while it falls in the latest one, to
// the slots division gives, on random successes: mostly in small steps
// forward, some far ahead, some back, some at a slot's bounds.
func TestUseTrackerSlotsAgreeWithDivision(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		span := time.Duration(1+r.IntN(600)) * time.Second
		u := newUseTracker(&useRule{factor: 2, span: span, base: 1})
		slot := int64(span / useSlots)
		var idx [useSlots]int64
		var n [useSlots]float64
		now := time.Unix(0, r.Int64N(1e18))
		for range 300 {
			now = nextSuccess(r, now, span)
			u.succeeded(now, 1)
			i := now.UnixNano() / slot
			if j := int(i % useSlots); idx[j] != i {
				idx[j], n[j] = i, 1
			} else {
				n[j]++
			}
			require.Equal(t, idx, u.idx, "slots at %v, span %v", now, span)
			require.Equal(t, n, u.n, "counts at %v, span %v", now, span)
		}
	}
}

// TestUseTrackerSumAgreesWithLoop holds the kept sum overSpan reads to the
// loop over every slot it replaces, on random successes (whole counts, at
// nextSuccess's instants) and readings at random instants about them.
func TestUseTrackerSumAgreesWithLoop(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for range 100 {
		span := time.Duration(1+r.IntN(3600)) * time.Second
		rule := useRule{factor: 2, span: span, base: 0}
		u := newUseTracker(&rule)
		slot := int64(span / useSlots)
		now := time.Unix(0, r.Int64N(1e18))
		for range 500 {
			now = nextSuccess(r, now, span)
			if r.IntN(4) > 0 {
				u.succeeded(now, float64(1+r.IntN(5000)))
			}
			at := now.Add(time.Duration(r.Int64N(int64(span/2))) - span/4)
			lo := at.Add(-span).UnixNano() / slot
			var want float64
			for j := range u.idx {
				if u.idx[j] > lo {
					want += u.n[j]
				}
			}
			require.Equal(t, rule.factor*want/span.Seconds(), u.overSpan(at), "at %v, span %v", at, span)
		}
	}
}

// TestUseTrackerShortSpan: a span shorter than useSlots nanoseconds is
// positive, so the rule is on; counting a success and reading the rule
// divided by a slot of zero, and panicked.
func TestUseTrackerShortSpan(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, span := range []time.Duration{1, useSlots - 1} {
			u := newUseTracker(&useRule{factor: 2, span: span, base: 1})
			now := time.Now()
			require.NotPanics(t, func() { u.succeeded(now, 3) }, "a success, span %v", span)
			require.NotPanics(t, func() { u.predict(now) }, "the rule read, span %v", span)
			assert.InDelta(t, 2*3/span.Seconds(), u.overSpan(now), 1e-9*2*3/span.Seconds(), "span %v", span)
		}
	})
}
