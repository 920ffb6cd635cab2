package breaker

import (
	"math/rand/v2"
	"testing"
)

// refTally is tally as a window of buckets is defined, with no shortcut:
// every event's bucket found by division.
type refTally struct {
	period, start, age int64
	n                  int
	counts             [maxBuckets]uint32
}

func (t *refTally) roll(now int64) {
	age := (now - t.start) / t.period
	if age <= t.age {
		return
	}
	if age-t.age >= int64(t.n) {
		t.counts = [maxBuckets]uint32{}
	} else {
		for a := t.age + 1; a <= age; a++ {
			t.counts[a%int64(t.n)] = 0
		}
	}
	t.age = age
}

func (t *refTally) add(now int64) { t.roll(now); t.counts[t.age%int64(t.n)]++ }

func (t *refTally) sum(now int64) uint32 {
	t.roll(now)
	var s uint32
	for _, c := range t.counts[:t.n] {
		s += c
	}
	return s
}

// TestTallyAgreesWithDivision holds tally, which finds the bucket of an
// event with no division while it falls in the newest, to refTally on
// random events: mostly forward in small steps, some far ahead, some
// back, with resets to new phases between.
func TestTallyAgreesWithDivision(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		n := 1 + r.IntN(maxBuckets)
		period := int64(1 + r.IntN(1000))
		var got tally
		got.period, got.n = period, n
		want := refTally{period: period, n: n}
		now := int64(r.IntN(100))
		for i := range 500 {
			switch k := r.IntN(100); {
			case k < 2:
				start := now - int64(r.IntN(50))
				got.reset(uint64(i), start)
				want = refTally{period: period, n: n, start: start}
			case k < 10:
				now += period * int64(r.IntN(3*maxBuckets))
			case k < 15:
				now -= int64(r.IntN(int(period) * 2))
			default:
				now += int64(r.IntN(int(period)))
			}
			if r.IntN(3) == 0 {
				if g, w := got.sum(now), want.sum(now); g != w {
					t.Fatalf("n %d period %d: sum at %d = %d, want %d", n, period, now, g, w)
				}
				continue
			}
			got.add(now)
			want.add(now)
			if got.counts != want.counts || got.age != want.age {
				t.Fatalf("n %d period %d: after an event at %d, counts %v age %d, want %v age %d",
					n, period, now, got.counts, got.age, want.counts, want.age)
			}
		}
	}
}
