package conformance

import (
	"math"
	"time"
)

// Admission is one request an ideal client gets through the server's
// limits.
type Admission struct {
	At time.Duration // since the start
	// Weight is the expected share of it that succeeds: 1, or less when
	// faults hit a share of the requests (a 10% share of 5xx: 0.9).
	Weight float64
}

// idealGuard bounds the ideal client's search for a demand the limits
// never let through (a fault that never ends).
const idealGuard = 1000 * time.Hour

// idealEpsilon is float slack, so a wait of exactly the computed time is
// enough, as the server allows.
const idealEpsilon = 1e-9

// Least is the least possible time of the workload against the server's
// limit, for a run starting at start: the time an ideal client, one that
// knows when the server will accept and sends exactly then, gets its last
// request answered. For N requests at R per second with a burst of B that
// is (N−B)/R; one-minute windows, dynamic limits and faults that hit every
// request for a while are followed as the server applies them, faults that
// hit a share of requests by their expected cost (a 10% share costs 1/0.9
// requests per success).
//
// The ideal client ignores the server's latency and a closed loop's
// concurrency; token limits (TPM) are not modelled. For an open loop with
// deadlines it answers at once each request that the server could not
// accept before its deadline, so Least is then the time the last request
// was answered. A job's requests are its batches at the workload's batch
// size.
func (s Scenario) Least(start time.Time) time.Duration {
	w := s.Workload
	if w.Every > 0 {
		_, least := s.openIdeal(start, idealGuard)
		return least
	}
	adm := s.closedIdeal(start, idealGuard, float64(w.demand()))
	if len(adm) == 0 {
		return 0
	}
	return adm[len(adm)-1].At
}

// Allowed is the number of successful requests an ideal client gets from
// the server in the first d of a run starting at start: as many as the
// limits allow for a closed loop or a job (whose demand is then taken as
// unbounded), the requests it could serve for an open loop.
func (s Scenario) Allowed(start time.Time, d time.Duration) float64 {
	var sum float64
	for _, a := range s.Ideal(start, d) {
		if a.At <= d {
			sum += a.Weight
		}
	}
	return sum
}

// Ideal returns the admissions of an ideal client until until, for a run
// starting at start: for a closed loop or a job, one that always has a
// request to send; for an open loop, the workload's requests that it can
// serve. It is the limit line of the comparison's plots.
func (s Scenario) Ideal(start time.Time, until time.Duration) []Admission {
	if s.Workload.Every > 0 {
		adm, _ := s.openIdeal(start, until)
		return adm
	}
	return s.closedIdeal(start, until, -1)
}

// closedIdeal admits requests as early as the server allows until the
// demand (negative: unbounded) is met or until passes.
func (s Scenario) closedIdeal(start time.Time, until time.Duration, demand float64) []Admission {
	w := s.Workload
	lim, limited := s.Server.Limits[w.endpoint()]
	if !limited || (lim.RPM <= 0 && !lim.Dynamic) {
		// Unlimited: everything at once, as far as the demand goes.
		n := max(int(math.Ceil(demand)), w.demand())
		adm := make([]Admission, n)
		for i := range adm {
			adm[i].Weight = 1
		}
		return adm
	}
	il := newIdealLimiter(lim, start)
	var adm []Admission
	var got float64
	for t := time.Duration(0); t <= until && (demand < 0 || got < demand-1e-9); {
		if end, blocked := s.blockedUntil(t); blocked {
			t = end
			continue
		}
		if wait := il.wait(t); wait > 0 {
			t += wait
			continue
		}
		wt := 1 - s.failShare(t)
		il.take(t, wt)
		adm = append(adm, Admission{At: t, Weight: wt})
		got += wt
	}
	return adm
}

// openIdeal serves the open loop's requests in order, each at the first
// moment the server accepts at or after its start, unless that moment is
// past its deadline: then it is answered at its start, and costs nothing.
// It returns the admissions until until and the time the last request was
// answered.
func (s Scenario) openIdeal(start time.Time, until time.Duration) ([]Admission, time.Duration) {
	w := s.Workload
	lim, limited := s.Server.Limits[w.endpoint()]
	unlimited := !limited || (lim.RPM <= 0 && !lim.Dynamic)
	il := newIdealLimiter(lim, start)
	var adm []Admission
	var last, prev time.Duration
	for i := range w.Requests {
		release := time.Duration(i) * w.Every
		deadline := time.Duration(math.MaxInt64)
		if w.Timeout > 0 {
			deadline = release + w.Timeout
		}
		t := max(release, prev)
		served := false
		for t <= deadline && t <= idealGuard {
			if end, blocked := s.blockedUntil(t); blocked {
				t = end
				continue
			}
			if unlimited {
				served = true
				break
			}
			if wait := il.wait(t); wait > 0 {
				t += wait
				continue
			}
			served = true
			break
		}
		if !served || t > deadline {
			last = max(last, release)
			continue
		}
		wt := 1 - s.failShare(t)
		if !unlimited {
			il.take(t, wt)
		}
		prev = t
		last = max(last, t)
		if t <= until {
			adm = append(adm, Admission{At: t, Weight: wt})
		}
	}
	return adm, last
}

// faultApplies reports whether f can hit the workload's requests.
func (s Scenario) faultApplies(f *Fault) bool {
	w := s.Workload
	return (f.Endpoint == "" || f.Endpoint == w.endpoint()) && (f.Model == "" || f.Model == w.Model)
}

// blockedUntil reports whether, at t, a fault hits every request of the
// workload, and when the last such fault ends.
func (s Scenario) blockedUntil(t time.Duration) (time.Duration, bool) {
	end, blocked := t, false
	for again := true; again; {
		again = false
		for i := range s.Server.Faults {
			f := &s.Server.Faults[i]
			if !s.faultApplies(f) || (f.Share > 0 && f.Share < 1) || end < f.From || (f.Until > 0 && end >= f.Until) {
				continue
			}
			blocked, again = true, true
			if f.Until <= 0 {
				return idealGuard + 1, true
			}
			end = f.Until
		}
	}
	return end, blocked
}

// failShare is the expected share of the workload's requests at t hit by
// faults that hit only a share.
func (s Scenario) failShare(t time.Duration) float64 {
	pass := 1.0
	for i := range s.Server.Faults {
		f := &s.Server.Faults[i]
		if s.faultApplies(f) && f.Share > 0 && f.Share < 1 && t >= f.From && (f.Until <= 0 || t < f.Until) {
			pass *= 1 - f.Share
		}
	}
	return 1 - pass
}

// idealLimiter follows one key's request limit as [Limit] documents it:
// per second, a bucket of RPM/60 per second holding max(RPM/60, 1) that
// starts full; per minute, windows of RPM aligned on the clock's minutes;
// dynamic, an RPM of twice the past hour's successes per minute within
// [Base, Cap]. It is written from the documentation, apart from the
// server's code, so the two check each other.
type idealLimiter struct {
	lim   Limit
	start int64 // Unix nanoseconds of the run's start
	level float64
	at    int64 // Unix nanoseconds of the last refill (per second) or the window's minute (per minute)
	ready bool
	succ  [60]float64 // successes by Unix minute, a ring over the past hour
	mins  [60]int64
}

func newIdealLimiter(lim Limit, start time.Time) *idealLimiter {
	return &idealLimiter{lim: lim, start: start.UnixNano()}
}

func (l *idealLimiter) rpm(now int64) float64 {
	if !l.lim.Dynamic {
		return l.lim.RPM
	}
	base := l.lim.Base
	if base == 0 {
		base = l.lim.RPM
	}
	if base == 0 {
		base = 60
	}
	idx := now / int64(time.Minute)
	var sum float64
	for i, m := range l.mins {
		if m > idx-60 && m <= idx {
			sum += l.succ[i]
		}
	}
	r := max(sum*2/60, base)
	if l.lim.Cap > 0 {
		r = min(r, l.lim.Cap)
	}
	return r
}

// level returns the bucket's level (per second) or the window's use (per
// minute) at now, without changing the state.
func (l *idealLimiter) levelAt(now int64, rpm float64) float64 {
	if l.lim.Window == time.Minute {
		if !l.ready || now/int64(time.Minute) != l.at {
			return 0
		}
		return l.level
	}
	capacity := max(rpm/60, 1)
	if !l.ready {
		return capacity
	}
	lv := l.level
	if now > l.at {
		lv += rpm / 60 * float64(now-l.at) / 1e9
	}
	return min(lv, capacity)
}

// wait is how long after t a request has to wait to be accepted; 0 when
// it is accepted at t.
func (l *idealLimiter) wait(t time.Duration) time.Duration {
	now := l.start + int64(t)
	rpm := l.rpm(now)
	lv := l.levelAt(now, rpm)
	if l.lim.Window == time.Minute {
		if lv == 0 || lv+1 <= rpm+idealEpsilon {
			return 0
		}
		return time.Duration((now/int64(time.Minute)+1)*int64(time.Minute) - now)
	}
	if lv+idealEpsilon >= 1 {
		return 0
	}
	return max(time.Duration(math.Ceil((1-lv)/(rpm/60)*1e9)), 1)
}

// take spends a request at t that wait admitted; weight is its expected
// success, counted towards a dynamic limit.
func (l *idealLimiter) take(t time.Duration, weight float64) {
	now := l.start + int64(t)
	rpm := l.rpm(now)
	if l.lim.Window == time.Minute {
		l.level = l.levelAt(now, rpm) + 1
		l.at = now / int64(time.Minute)
	} else {
		l.level = max(l.levelAt(now, rpm)-1, 0)
		l.at = now
	}
	l.ready = true
	if l.lim.Dynamic {
		idx := now / int64(time.Minute)
		i := idx % 60
		if l.mins[i] != idx {
			l.mins[i], l.succ[i] = idx, 0
		}
		l.succ[i] += weight
	}
}
