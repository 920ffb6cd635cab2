package reallimit

import (
	"fmt"
	"math"
	"time"
)

// Limiter is a server's per-key limit as its configuration states it,
// which is all the oracle knows.
type Limiter interface {
	// Admit is the earliest the server admits the i-th request (from 0)
	// of a key, counted from the arrival of its first.
	Admit(i int) time.Duration
	// Rate is the limit's long-run rate, in requests a second: what a
	// client is "told" when it is told the right limit.
	Rate() float64
	fmt.Stringer
}

// Oracle is the least time a client that knows the server's state needs
// to have n requests admitted: from the first request's arrival to the
// last's, Admit(n-1). Round trips are not in it; a run adds one, the
// wait for the last answer.
func Oracle(l Limiter, n int) time.Duration {
	if n <= 0 {
		return 0
	}
	return l.Admit(n - 1)
}

// LeakyBucket is nginx's limit_req: PerSecond requests a second, and up to
// Burst more admitted at once (burst=Burst nodelay). nginx keeps, per key,
// the excess of requests over the rate in thousandths of a request,
// drained at the rate by the millisecond clock of its event loop; a
// request that would raise the excess above Burst is refused and leaves
// no trace. So a client admitted as early as possible gets Burst+1
// requests at once, then one every 1/PerSecond.
type LeakyBucket struct {
	PerSecond float64 // the rate, requests a second
	Burst     int     // extra requests admitted at once; 0 for none
}

// Admit is max(0, i-Burst)/PerSecond, rounded up to nginx's millisecond.
func (l LeakyBucket) Admit(i int) time.Duration {
	k := i - l.Burst
	if k <= 0 || !(l.PerSecond > 0) {
		return 0
	}
	ms := math.Ceil(float64(k) * 1000 / l.PerSecond)
	return time.Duration(ms) * time.Millisecond
}

// Rate is PerSecond.
func (l LeakyBucket) Rate() float64 { return l.PerSecond }

// String describes the bucket as nginx's limit_req configures it.
func (l LeakyBucket) String() string {
	if l.Burst == 0 {
		return fmt.Sprintf("leaky bucket %g/s, no burst", l.PerSecond)
	}
	return fmt.Sprintf("leaky bucket %g/s, burst %d nodelay", l.PerSecond, l.Burst)
}

// FixedWindow is express-rate-limit's memory store: Quota requests per
// Window, the window opened by a key's first request after the previous
// one ended (not aligned to the clock), refused requests counted in it
// too. A client admitted as early as possible sends a full window's quota
// at once, then waits for the next window.
type FixedWindow struct {
	Quota  int           // requests a window admits
	Window time.Duration // the window's length
}

// Admit is (i/Quota) whole windows.
func (f FixedWindow) Admit(i int) time.Duration {
	if f.Quota <= 0 || i <= 0 {
		return 0
	}
	return time.Duration(i/f.Quota) * f.Window
}

// Rate is Quota per Window, in requests a second.
func (f FixedWindow) Rate() float64 {
	if f.Window <= 0 {
		return 0
	}
	return float64(f.Quota) / f.Window.Seconds()
}

// String describes the window as express-rate-limit configures it.
func (f FixedWindow) String() string {
	return fmt.Sprintf("fixed window %d per %v", f.Quota, f.Window)
}
