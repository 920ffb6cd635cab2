package retry

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/steadyapi/steady/transport"
)

// New returns the retry decorator for p; see [Policy] for what each field
// does and its default. The returned middleware can wrap any number of
// transports; each wrapped transport is safe for concurrent use, and all
// transports one New call wraps share one retry budget.
//
// A request goes through the attempt loop:
//
//   - The outcome is classified ([ShouldRetry], or Policy.ShouldRetry). A
//     cancelled or expired context, a body that cannot be sent again
//     ([transport.Replay]) or retries used up end the loop.
//   - The wait is the server's (retry-after-ms, Retry-After, or the
//     exhausted window's x-ratelimit-reset on a 429; see
//     [transport.Signals.ServerWait]) plus a small positive jitter, or
//     without one the backoff. A server wait over Policy.MaxServerWait ends
//     the loop.
//   - A wait that would end after the context's deadline is not started,
//     and a retry the budget has no room for is not made: the loop ends.
//   - Otherwise Policy.OnRetry is told, the response is drained and closed
//     ([transport.Drain]), the wait is slept (a cancellation cuts it short),
//     and the body is sent again, byte-identical.
//
// When the loop ends on a response, that response is returned as it came,
// its body unread. When it ends on an error, or no response is left to
// return, the error is an [*Error] that counts the attempts and wraps the
// cause, so [errors.Is] still finds syscall.ECONNRESET,
// [context.DeadlineExceeded] and the like.
func New(p Policy) transport.Middleware {
	s := p.settings()
	b := newBudget(p)
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		return &roundTripper{next: next, s: s, budget: b}
	}
}

type roundTripper struct {
	next   http.RoundTripper
	s      settings
	budget *budget // nil when disabled
}

// RoundTrip runs the attempt loop described at [New].
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Err() != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, &Error{Err: context.Cause(ctx)}
	}
	var replay transport.Replay
	if err := replay.Reset(req, rt.s.replayLimit); err != nil {
		return nil, &Error{Err: err}
	}
	if rt.budget != nil {
		rt.budget.request()
	}
	r, _ := replay.Request() // the first attempt's request cannot fail
	for attempt := 1; ; attempt++ {
		resp, err := rt.next.RoundTrip(r)
		if err != nil {
			if resp != nil { // a broken RoundTripper; keep the contract ourselves
				transport.Drain(resp)
				resp = nil
			}
		} else if resp == nil {
			err = fmt.Errorf("steady/retry: %T returned neither response nor error", rt.next)
		}
		if attempt > rt.s.maxRetries || !rt.s.shouldRetry(resp, err) ||
			ctx.Err() != nil || !replay.CanReplay() {
			return giveUp(resp, err, attempt, nil)
		}

		wait, server, ok := rt.wait(ctx, resp, attempt)
		if !ok { // the server asked for longer than MaxServerWait
			return giveUp(resp, err, attempt, nil)
		}
		if !transport.Fits(ctx, wait) {
			return giveUp(resp, err, attempt, transport.ErrDeadline)
		}
		if rt.budget != nil && !rt.budget.allowRetry() {
			return giveUp(resp, err, attempt, nil)
		}

		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		if rt.s.onRetry != nil {
			rt.s.onRetry(RetryEvent{
				Method:         req.Method,
				URL:            redactedURL(req.URL),
				Attempt:        attempt,
				Wait:           wait,
				ServerDirected: server,
				Status:         status,
				Err:            err,
			})
		}
		transport.Drain(resp)
		if serr := transport.Sleep(ctx, wait); serr != nil {
			return nil, &Error{Attempts: attempt, Status: status, Err: serr}
		}
		if r, err = replay.Request(); err != nil {
			return nil, &Error{Attempts: attempt, Err: err}
		}
	}
}

// giveUp returns the last outcome: the response untouched, or the error
// wrapped with the attempt count.
func giveUp(resp *http.Response, err error, attempts int, deadline error) (*http.Response, error) {
	if err == nil {
		return resp, nil
	}
	return nil, &Error{Attempts: attempts, Err: err, Deadline: deadline}
}

// redactedURL keeps what a log needs of u and drops what may hold a secret:
// user info and the query string.
func redactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return c.String()
}
