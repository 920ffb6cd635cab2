package breaker

// tally counts events in a rolling window of n buckets of period
// nanoseconds each, the buckets aged from start as gobreaker ages its own:
// an event at t falls in bucket (t-start)/period, and the window holds the
// newest bucket and the n-1 before it.
type tally struct {
	period int64
	n      int
	gen    uint64 // the breaker phase counted
	start  int64
	age    int64 // the newest bucket's
	// next is when the bucket after the newest starts, and cur the index
	// of the newest in counts: an event before next is counted with no
	// division (two of them, which cost more than the rest of a count).
	next   int64
	cur    int
	counts [maxBuckets]uint32
}

// maxBuckets bounds a window's buckets: the settings make at most ten.
const maxBuckets = 10

// reset empties the tally for the phase gen, starting at start.
func (t *tally) reset(gen uint64, start int64) {
	t.gen, t.start, t.age = gen, start, 0
	t.next, t.cur = start+t.period, 0
	t.counts = [maxBuckets]uint32{}
}

// roll moves the window on to the bucket of now.
func (t *tally) roll(now int64) {
	if now < t.next {
		return // the newest bucket's, or earlier (counted in the newest)
	}
	if age := (now - t.start) / t.period; age > t.age {
		if age-t.age >= int64(t.n) {
			t.counts = [maxBuckets]uint32{}
		} else {
			for a := t.age + 1; a <= age; a++ {
				t.counts[a%int64(t.n)] = 0
			}
		}
		t.age = age
	}
	t.next, t.cur = t.start+(t.age+1)*t.period, int(t.age%int64(t.n))
}

// add counts one event at now.
func (t *tally) add(now int64) {
	t.roll(now)
	t.counts[t.cur]++
}

// sum is the count of the window as of now.
func (t *tally) sum(now int64) uint32 {
	t.roll(now)
	var s uint32
	for _, c := range t.counts[:t.n] {
		s += c
	}
	return s
}
