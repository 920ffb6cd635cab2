package retry

import (
	"context"
	"net/http"
	"time"

	"github.com/steadyapi/steady/transport"
)

// wait is how long to sleep before the retry after attempt, from now: the
// server's directed wait stretched by jitter, or the backoff. ok is false
// when the server asked for more than MaxServerWait.
func (rt *roundTripper) wait(ctx context.Context, resp *http.Response, attempt int, now time.Time) (d time.Duration, server, ok bool) {
	if resp != nil {
		sig := transport.ParseSignals(resp.Header, now)
		if asked := sig.ServerWait(resp.StatusCode); asked >= 0 {
			if asked > rt.s.maxServerWait {
				return 0, true, false
			}
			extra := rt.draw(min(max(asked/10, serverJitterMin), serverJitterMax))
			if dl, has := ctx.Deadline(); has {
				// Jitter is a courtesy to the server; the wait it asked for is
				// not. Trim the courtesy, not the wait, to end before the
				// deadline (a wait that ends at it does not fit).
				extra = max(0, min(extra, dl.Sub(now)-asked-1))
			}
			return asked + extra, true, true
		}
	}
	return rt.draw(backoff(rt.s.baseDelay, rt.s.maxDelay, attempt)), false, true
}

// Bounds of the jitter added to a server-directed wait.
const (
	serverJitterMin = 50 * time.Millisecond
	serverJitterMax = time.Second
)

// backoff is the cap of the full-jitter wait before retry n (after attempt
// n): min(max, base·2^(n-1)), without overflow.
func backoff(base, maxDelay time.Duration, n int) time.Duration {
	shift := n - 1
	if shift >= 62 || base > maxDelay>>shift {
		return maxDelay
	}
	return base << shift
}

// draw returns a random duration in [0, d).
func (rt *roundTripper) draw(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rt.s.rand(int64(d)))
}
