package redisbucket

import (
	"math"
	"sync"
	"time"

	"github.com/steadyapi/steady/bucket"
)

// localBucket is the fallback while Redis is unreachable: the script's
// arithmetic in process, at the store's share of the rate. Its
// reservations have negative IDs, so Cancel knows where to give back.
// Its times are the store's since: nanoseconds on the monotonic clock.
type localBucket struct {
	mu    sync.Mutex
	every float64 // ns per token
	burst float64
	base  float64 // the time at which the bucket is empty; NaN: new
	until float64 // the end of a pause; 0: none
	seq   int64   // latest reservation, counting down from -1
	// outage is the store's count of outages when the bucket was made:
	// a bucket of an earlier outage is not taken up by a later one.
	outage int64
}

// newLocalBucket is an in-process bucket at rate and burst; a rate that is
// no rate (a shape Pause was given, not Reserve, which refuses it) is a
// token a second, and a burst that is none is one token.
func newLocalBucket(rate, burst float64) *localBucket {
	if !(rate > 0) || math.IsInf(rate, 0) {
		rate = 1
	}
	if !(burst >= 1) || math.IsInf(burst, 0) {
		burst = 1
	}
	return &localBucket{every: 1e9 / rate, burst: burst, base: math.NaN()}
}

func (l *localBucket) reserve(now, n float64, maxWait time.Duration) bucket.Reservation {
	l.mu.Lock()
	defer l.mu.Unlock()
	floor := now - l.burst*l.every
	base := l.base
	if math.IsNaN(base) {
		floor = now - min(n, l.burst)*l.every
		base = floor
	}
	if l.until > 0 {
		floor = max(floor, l.until-min(n, l.burst)*l.every)
	}
	base = max(base, floor)
	after := base + n*l.every
	wait := bucket.MaxWait // a longer wait would not convert
	if w := math.Ceil(max(now, l.until, after) - now); w < float64(bucket.MaxWait) {
		wait = time.Duration(w)
	}
	// Rate 0: the share is this process's alone, not a rate every process
	// should adopt (nor write back to Redis when it answers again).
	r := bucket.Reservation{Wait: wait, Tokens: n}
	if maxWait >= 0 && (wait > maxWait || wait == bucket.MaxWait) {
		return r
	}
	l.base = after
	l.seq--
	r.OK, r.ID = true, l.seq
	return r
}

func (l *localBucket) cancel(r bucket.Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r.ID != l.seq || math.IsNaN(l.base) {
		return
	}
	l.base -= r.Tokens * l.every
	l.seq++
}

func (l *localBucket) pause(until float64) {
	l.mu.Lock()
	l.until = max(l.until, until)
	l.mu.Unlock()
}

func (l *localBucket) setRate(now, rate, burst float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	every := 1e9 / rate
	if !math.IsNaN(l.base) && l.base < now {
		l.base = now - (now-l.base)/l.every*every
	}
	l.every, l.burst = every, max(1, burst)
	l.seq-- // reservations before the change no longer give back
}

// idle reports whether the bucket is full again at now and holds no
// pause: a new bucket would limit no less.
func (l *localBucket) idle(now float64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until <= now && (math.IsNaN(l.base) || l.base+l.burst*l.every <= now)
}
