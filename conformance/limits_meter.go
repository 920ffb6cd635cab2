package conformance

import (
	"math"
	"time"
)

// meterSpec is what a meter enforces at one moment: the algorithm and the
// rate in force (a dynamic limit's changes from one request to the next).
type meterSpec struct {
	alg       Algorithm // never DefaultAlgorithm
	perMinute float64
	window    time.Duration
	burst     float64 // Limit.Burst or TokenBurst: 0 means the default
	fromFirst bool
}

// capacity is the most a bucket holds.
func (s *meterSpec) capacity() float64 {
	if s.burst > 0 {
		return s.burst
	}
	return max(s.perMinute/60, 1)
}

// quota is what one window allows.
func (s *meterSpec) quota() float64 {
	return s.perMinute * float64(s.window) / float64(time.Minute)
}

// limitMeter is one count (requests or tokens) of one key, in the form its
// algorithm keeps.
type limitMeter struct {
	ready bool
	// TokenBucket: level is the units left after the last request taken,
	// at the Unix nanosecond at. FixedWindow: level is the units spent in
	// the window that started at the Unix nanosecond at; ready says a
	// window is open.
	level float64
	at    int64
	// LeakyBucket: nginx's excess, in thousandths of a unit, as of the
	// Unix millisecond last.
	excess, last int64
	// SlidingLog: the accepted requests not yet forgotten, oldest first,
	// from log[head]; sum is their units.
	log  []logEntry
	head int
	sum  float64
}

type logEntry struct {
	at    int64 // Unix nanoseconds
	units float64
}

// rateWindow is what a meter reports: the server's view of one limit after a
// request, as the rate headers tell it. reset is, on a 429, the exact wait
// the request needs; otherwise the time until the limit is whole again.
// quota per span is the limit as a policy of the IETF drafts states it.
// refused says this limit refused the request (reset is then its wait).
type rateWindow struct {
	set, refused     bool
	limit, remaining float64
	reset            time.Duration
	quota            float64
	span             time.Duration
}

const bucketEpsilon = 1e-9 // float slack, so a wait of exactly reset is enough

// refresh brings m to now and returns the wait until need more units fit
// (0 when they fit now). It changes nothing a refused request could be
// said to have spent.
func (m *limitMeter) refresh(now int64, s *meterSpec, need float64) time.Duration {
	switch s.alg {
	case LeakyBucket:
		return m.leakyWait(now, s, need)
	case SlidingLog:
		return m.slidingWait(now, s, need)
	case FixedWindow:
		return m.fixedWait(now, s, need)
	}
	return m.bucketWait(now, s, need)
}

// take spends need units that refresh admitted.
func (m *limitMeter) take(now int64, s *meterSpec, need float64) {
	switch s.alg {
	case LeakyBucket:
		m.excess, m.last, m.ready = m.leakyExcess(now, s, need), now/int64(time.Millisecond), true
	case SlidingLog:
		m.log = append(m.log, logEntry{at: now, units: need})
		m.sum += need
	case FixedWindow:
		if !m.ready { // a window started by this request
			m.at, m.ready = now, true
		}
		m.level += need
	default:
		m.level = max(m.bucketLevel(now, s)-min(need, s.capacity()), 0) // max: the float slack of refresh
		m.at, m.ready = now, true
	}
}

// view is the window m stands at; wait, when positive, is the reset.
func (m *limitMeter) view(now int64, s *meterSpec, wait time.Duration) rateWindow {
	w := rateWindow{set: true, refused: wait > 0, reset: wait}
	switch s.alg {
	case SlidingLog, FixedWindow:
		w.limit, w.quota, w.span = s.quota(), s.quota(), s.window
		used := m.sum
		if s.alg == FixedWindow {
			used = m.level
		}
		w.remaining = max(math.Floor(w.limit-used+bucketEpsilon), 0)
		if wait > 0 {
			return w
		}
		switch {
		case s.alg == SlidingLog && m.head < len(m.log):
			w.reset = time.Duration(m.log[len(m.log)-1].at + int64(s.window) - now)
		case s.alg == FixedWindow && m.ready:
			w.reset = time.Duration(m.at + int64(s.window) - now)
		}
		return w
	}
	// The buckets: a policy of the rate over the whole seconds the bucket
	// takes to fill, so that quota/span is the rate.
	rate, capacity := s.perMinute/60, s.capacity()
	secs := max(math.Ceil(capacity/rate-bucketEpsilon), 1)
	w.limit, w.quota, w.span = capacity, rate*secs, nanos(secs*1e9)
	if s.alg == LeakyBucket {
		burst, excess := leakyBurst(s), int64(-1000)
		if m.ready {
			excess = max(m.excess-leakyDecay(s, m.last, now), -1000)
		}
		w.remaining = float64(max((burst-excess)/1000, 0))
		if wait == 0 && m.ready {
			full := m.last + ceilDiv((m.excess+1000)*1000, leakyRate(s))
			w.reset = time.Duration(max(full*int64(time.Millisecond)-now, 0))
		}
		return w
	}
	lv := m.bucketLevel(now, s)
	w.remaining = math.Floor(lv + bucketEpsilon)
	if wait == 0 {
		w.reset = nanos(math.Ceil((capacity - lv) / rate * 1e9))
	}
	return w
}

// bucketLevel is what TokenBucket holds at now: what it held after the
// last request it took, refilled since at the rate in force now. Only
// take stores it, so a refused request changes nothing, not even how a
// dynamic rate's changes are refilled.
func (m *limitMeter) bucketLevel(now int64, s *meterSpec) float64 {
	capacity := s.capacity()
	if !m.ready {
		return capacity
	}
	lv := m.level
	if now > m.at {
		lv += s.perMinute / 60 * float64(now-m.at) / 1e9
	}
	return min(lv, capacity)
}

// bucketWait is TokenBucket's refresh.
func (m *limitMeter) bucketWait(now int64, s *meterSpec, need float64) time.Duration {
	lv := m.bucketLevel(now, s)
	need = min(need, s.capacity())
	if lv+bucketEpsilon >= need {
		return 0
	}
	return nanos(math.Ceil((need - lv) / (s.perMinute / 60) * 1e9))
}

// longestWait bounds the waits and spans a meter reports: a century, far
// past any client's patience and far enough below the largest Duration for
// the rate headers to round it and add it to the clock.
const longestWait = 100 * 365 * 24 * time.Hour

// nanos is f nanoseconds as a Duration, at most longestWait: a rate so low
// that its wait overflows a Duration gave a negative one (on amd64), and
// admitted every request.
func nanos(f float64) time.Duration {
	if f >= float64(longestWait) {
		return longestWait
	}
	return time.Duration(f)
}

// leakyRate is nginx's rate: thousandths of a unit a second, an integer.
func leakyRate(s *meterSpec) int64 {
	return max(int64(math.Floor(s.perMinute*1000/60+bucketEpsilon)), 1)
}

// leakyBurst is nginx's burst in thousandths of a unit.
func leakyBurst(s *meterSpec) int64 {
	return max(int64(math.Round((s.capacity()-1)*1000)), 0)
}

// leakyDecay is how much of the excess drains between the millisecond last
// and now, as nginx computes it: whole thousandths, rounded down.
func leakyDecay(s *meterSpec, last, now int64) int64 {
	ms := now/int64(time.Millisecond) - last
	if ms < 0 { // nginx takes the absolute value of a clock that went back
		ms = -ms
	}
	const long = 1 << 32 // past any excess: and no overflow
	if ms > long {
		ms = long
	}
	return leakyRate(s) * ms / 1000
}

// leakyExcess is the excess a request of need units would leave at now.
func (m *limitMeter) leakyExcess(now int64, s *meterSpec, need float64) int64 {
	if !m.ready { // a key nginx has no node for yet
		return 0
	}
	cost := int64(math.Round(need * 1000))
	return max(m.excess-leakyDecay(s, m.last, now)+cost, 0)
}

// leakyWait is LeakyBucket's refresh: it changes nothing, as nginx keeps
// a refused request out of the key's node.
func (m *limitMeter) leakyWait(now int64, s *meterSpec, need float64) time.Duration {
	burst := leakyBurst(s)
	if m.leakyExcess(now, s, need) <= burst {
		return 0
	}
	// The first millisecond whose decay brings the excess within the
	// burst: ⌊rate×d/1000⌋ ≥ over.
	over := m.excess + int64(math.Round(need*1000)) - burst
	at := m.last + ceilDiv(over*1000, leakyRate(s))
	return time.Duration(at*int64(time.Millisecond) - now)
}

// slidingWait is SlidingLog's refresh: it forgets what left the window.
func (m *limitMeter) slidingWait(now int64, s *meterSpec, need float64) time.Duration {
	w := int64(s.window)
	for m.head < len(m.log) && m.log[m.head].at+w <= now {
		m.sum -= m.log[m.head].units
		m.head++
	}
	if m.head == len(m.log) {
		m.log, m.head, m.sum = m.log[:0], 0, 0
	} else if m.head > 1024 && 2*m.head > len(m.log) {
		m.log = append(m.log[:0], m.log[m.head:]...)
		m.head = 0
	}
	quota := s.quota()
	need = min(need, quota)
	left := m.sum
	if left+need <= quota+bucketEpsilon {
		return 0
	}
	for _, e := range m.log[m.head:] {
		left -= e.units
		if left+need <= quota+bucketEpsilon {
			return time.Duration(e.at + w - now)
		}
	}
	return time.Duration(m.log[len(m.log)-1].at + w - now) // not reached: an empty log fits need
}

// fixedWait is FixedWindow's refresh: it opens the window now falls in.
func (m *limitMeter) fixedWait(now int64, s *meterSpec, need float64) time.Duration {
	w := int64(s.window)
	switch {
	case s.fromFirst:
		if m.ready && now >= m.at+w {
			m.level, m.ready = 0, false
		}
	default:
		if start := now - now%w; !m.ready || start != m.at {
			m.level, m.at, m.ready = 0, start, true
		}
	}
	if m.level == 0 || m.level+need <= s.quota()+bucketEpsilon {
		return 0
	}
	return time.Duration(m.at + w - now)
}

// ceilDiv is ⌈a/b⌉ for b > 0.
func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return -(-a / b)
	}
	return (a + b - 1) / b
}
