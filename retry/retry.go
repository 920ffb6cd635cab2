package retry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// New returns the retry decorator; see the [Option]s for what can be
// changed and the defaults. The returned middleware can wrap any number of
// transports; each wrapped transport is safe for concurrent use, and all
// transports one New call wraps share one retry budget. A nil next
// RoundTripper means [http.DefaultTransport].
//
// A request goes through the attempt loop:
//
//   - The outcome is classified ([ShouldRetry], or [WithShouldRetry]'s
//     choice). A cancelled or expired context, a body that cannot be sent
//     again ([transport.Replay]), retries used up, or a connection that
//     failed after a request that is not idempotent may have been written
//     (see [ShouldRetry]) end the loop.
//   - The wait is the server's (retry-after-ms, Retry-After, or the
//     exhausted window's x-ratelimit-reset on a 429; see
//     [transport.Signals.ServerWait]) plus a small positive jitter, or
//     without one the backoff. A server wait over [WithMaxServerWait]'s cap
//     ends the loop.
//   - A wait that would not end before the context's deadline is not
//     started, and a retry the budget has no room for is not made: the
//     loop ends.
//   - The body of the next attempt is made ready (from GetBody, or the
//     buffer); if that fails, the loop ends on the answer in hand.
//   - Otherwise the response is drained and closed ([transport.Drain]: for
//     [transport.DrainWait] at most, and never past the request's end), the
//     event hook is told, the wait is slept (a cancellation cuts it short),
//     and the body is sent again, byte-identical.
//
// When the loop ends on a response, that response is returned as it came,
// its body unread. When it ends on an error, or no response is left to
// return, the error is an [*Error] that counts the attempts and wraps the
// cause, so [errors.Is] still finds syscall.ECONNRESET,
// [context.DeadlineExceeded] and the like.
func New(opts ...Option) transport.Middleware {
	s := newSettings(opts)
	b := newBudget(s)
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		n, _ := next.(transport.InfoRoundTripper)
		return &roundTripper{next: next, nextInfo: n, s: s, budget: b}
	}
}

type roundTripper struct {
	next http.RoundTripper
	// nextInfo is next when it is a transport.InfoRoundTripper: each
	// attempt is handed to it directly, as transport.Forward would, without
	// Forward's look at its type on every attempt.
	nextInfo transport.InfoRoundTripper
	s        settings
	budget   *budget // nil when disabled
}

// forward sends req on to next with info, as transport.Forward does.
func (rt *roundTripper) forward(req *http.Request, info *transport.Info) (*http.Response, error) {
	if rt.nextInfo != nil {
		return rt.nextInfo.RoundTripInfo(req, info)
	}
	return transport.Forward(rt.next, req, info)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (rt *roundTripper) CloseIdleConnections() { transport.CloseIdleConnections(rt.next) }

// RoundTrip runs the attempt loop described at [New].
func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return rt.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected): each attempt is handed on with it.
func (rt *roundTripper) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	ctx := req.Context()
	if ctx.Err() != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return rt.failed(req, 0, 0, context.Cause(ctx))
	}
	var replay transport.Replay
	if err := replay.ResetInfo(req, info, rt.s.replayLimit); err != nil {
		return rt.failed(req, 0, 0, err)
	}
	// A connection that failed after a request the server may have read is
	// retried only for a request that may be sent twice.
	twice := rt.s.idempotent || idempotent(req)
	r, _ := replay.Request() // the first attempt's request cannot fail
	// Where the caller's own body goes out (not a buffered copy), a failure
	// reading it is the caller's, not the connection's: it is not retried.
	// Only a request that a connection failure would retry needs to know.
	watching := twice && !replay.Buffered()
	var watched *watchedBody
	if watching {
		r, watched = watch(r)
	}
	_, answers := info.AnsweredAt()
	var retried uint64 // the budget's second the retry under way is counted in
	for attempt := 1; ; attempt++ {
		resp, err := rt.forward(r, info)
		if rt.budget != nil {
			if attempt == 1 {
				// The request counts in the budget as its first attempt
				// ends, at the answer's time as a limiter under retry read
				// it, when one did: the clock is read once per answer. A
				// request refused before it was sent does not count.
				if err == nil || !notSent(err) {
					if at, n := info.AnsweredAt(); n != answers {
						rt.budget.requestAt(at)
					} else {
						rt.budget.request()
					}
				}
			} else if err != nil && retried != 0 && notSent(err) {
				// Nor does a retry refused before it was sent: the budget
				// bounds what reaches the server.
				rt.budget.unretry(retried)
			}
		}
		if err != nil {
			if resp != nil { // a broken RoundTripper; keep the contract ourselves
				transport.Drain(resp)
				resp = nil
			}
		} else if resp == nil {
			err = fmt.Errorf("steady/retry: %T returned neither response nor error", rt.next)
		}
		retryable := attempt <= rt.s.maxRetries && rt.s.shouldRetry(resp, err, info)
		unsafe := retryable && (err != nil && (!twice && !notWritten(err) || watched.failed()) ||
			err == nil && !twice && rt.s.maybeProcessed(resp))
		if !retryable || unsafe || ctx.Err() != nil || !replay.CanReplay() {
			if rt.s.onEvent != nil {
				return rt.giveUp(req, resp, err, attempt, nil, rt.stopReason(ctx, info, resp, err, attempt, retryable, unsafe))
			}
			return giveUp(resp, err, attempt, nil) // the happy path: inlined, as without a hook
		}

		// The wait is counted from now, the answer's arrival, and ends at
		// an instant found to fit the deadline: the time spent draining the
		// answer and telling the hook is part of it, and cannot push its end
		// past the deadline once it was found to fit.
		now := time.Now()
		wait, server, ok := rt.wait(ctx, resp, attempt, now)
		if !ok { // the server asked for longer than the cap
			return rt.giveUp(req, resp, err, attempt, nil, ReasonServerWait)
		}
		end := now.Add(wait)
		if dl, has := ctx.Deadline(); has && !end.Before(dl) { // as transport.Fits
			return rt.giveUp(req, resp, err, attempt, transport.ErrDeadline, ReasonDeadline)
		}
		if rt.budget != nil {
			if retried = rt.budget.allowRetry(); retried == 0 {
				return rt.giveUp(req, resp, err, attempt, nil, ReasonBudget)
			}
		}
		// The next body before this answer is thrown away: if it cannot be
		// had (GetBody failed), the caller gets the answer in hand.
		next, nerr := replay.Request()
		if nerr != nil {
			rt.unretry(retried) // the retry allowed is never sent
			return rt.giveUp(req, resp, err, attempt, nil, ReasonNotReplayable)
		}

		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		// Drained before the hook runs: a hook that panics must not leave
		// the discarded answer's connection open.
		transport.Drain(resp)
		if rt.s.onEvent != nil {
			why := ReasonBackoff
			if server {
				why = ReasonServer
			}
			rt.s.onEvent.Emit(transport.Event{Kind: transport.EventRetry, Endpoint: transport.Endpoint(req),
				Attempt: attempt, Wait: wait, Status: status, Err: err, Reason: why})
		}
		if serr := transport.SleepUntil(ctx, end); serr != nil {
			closeBody(next)
			rt.unretry(retried) // the retry allowed is never sent
			if rt.s.onEvent != nil {
				rt.s.onEvent.Emit(transport.Event{Kind: transport.EventGaveUp, Endpoint: transport.Endpoint(req),
					Attempt: attempt, Status: status, Err: err, Reason: ReasonCanceled})
			}
			return rt.failed(req, attempt, status, serr)
		}
		r = next
		if watching {
			r, watched = watch(r)
		}
	}
}

// unretry gives back the budget's place of a retry it allowed, in second
// epoch, when the retry is not sent after all.
func (rt *roundTripper) unretry(epoch uint64) {
	if rt.budget != nil && epoch != 0 {
		rt.budget.unretry(epoch)
	}
}

func closeBody(r *http.Request) {
	if r != nil && r.Body != nil {
		_ = r.Body.Close()
	}
}

// Reasons of a [transport.EventGaveUp] from this package: why a failure
// that is retried was not, this time.
const (
	ReasonRetriesSpent  = "retries spent"        // the retries allowed were used up
	ReasonBudget        = "budget spent"         // the retry budget had no room
	ReasonServerWait    = "server wait too long" // the server asked for more than the cap
	ReasonDeadline      = "deadline"             // the wait would outlast the context's deadline
	ReasonCanceled      = "context done"         // the context ended, before or during the wait
	ReasonNotReplayable = "body not replayable"  // the body cannot be sent again
	ReasonNotIdempotent = "may have been sent"   // the request may have been acted on: a connection failed after it may have been written, or an answer's status says so (WithMaybeProcessed)
)

// Reasons of a [transport.EventRetry]: whose wait comes before the retry.
const (
	ReasonServer  = "server"  // the server's (retry-after-ms, Retry-After, x-ratelimit-reset), plus jitter
	ReasonBackoff = "backoff" // the exponential backoff with full jitter
)

// stopReason is why the loop ends on the attempt's outcome: "" when it is
// not a failure that is retried, else why it is not retried. Only the
// event path asks: ShouldRetry is called again only when the retries are
// spent, which the loop's check did not call it for.
func (rt *roundTripper) stopReason(ctx context.Context, info *transport.Info, resp *http.Response, err error, attempt int, retryable, unsafe bool) string {
	switch {
	case !retryable:
		if attempt > rt.s.maxRetries && rt.s.shouldRetry(resp, err, info) {
			return ReasonRetriesSpent
		}
		return ""
	case unsafe:
		return ReasonNotIdempotent
	case ctx.Err() != nil:
		return ReasonCanceled
	}
	return ReasonNotReplayable
}

// giveUp ends the request on the outcome of its last attempt (see the
// function giveUp) and reports it: an EventGaveUp when why is set, then
// its EventDone.
func (rt *roundTripper) giveUp(req *http.Request, resp *http.Response, err error, attempts int, deadline error, why string) (*http.Response, error) {
	out, outErr := giveUp(resp, err, attempts, deadline)
	if rt.s.onEvent != nil {
		ev := transport.Event{Endpoint: transport.Endpoint(req), Attempt: attempts}
		if resp != nil {
			ev.Status = resp.StatusCode
		}
		if why != "" {
			ev.Kind, ev.Err, ev.Reason = transport.EventGaveUp, err, why
			rt.s.onEvent.Emit(ev)
		}
		ev.Kind, ev.Err, ev.Reason = transport.EventDone, outErr, ""
		rt.s.onEvent.Emit(ev)
	}
	return out, outErr
}

// failed returns the error of a request that ends with no response, told
// to the event hook as its EventDone.
func (rt *roundTripper) failed(req *http.Request, attempts, status int, cause error) (*http.Response, error) {
	err := &Error{Attempts: attempts, Status: status, Err: cause}
	if rt.s.onEvent != nil {
		rt.s.onEvent.Emit(transport.Event{Kind: transport.EventDone, Endpoint: transport.Endpoint(req),
			Attempt: attempts, Err: err})
	}
	return nil, err
}

// giveUp returns the last outcome: the response untouched, or the error
// wrapped with the attempt count.
func giveUp(resp *http.Response, err error, attempts int, deadline error) (*http.Response, error) {
	if err == nil {
		return resp, nil
	}
	return nil, &Error{Attempts: attempts, Err: err, Deadline: deadline}
}

// watchedBody is the caller's request body, watched for a read error of
// its own: the error a transport returns then is the body's, and sending
// the request again would not cure it. The transport may read the body
// on another goroutine, even after RoundTrip returns: the flag is atomic.
type watchedBody struct {
	io.ReadCloser
	bad atomic.Bool
}

func (w *watchedBody) Read(p []byte) (int, error) {
	n, err := w.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		w.bad.Store(true)
	}
	return n, err
}

// failed reports whether a read of w failed; false for a nil w.
func (w *watchedBody) failed() bool { return w != nil && w.bad.Load() }

// watch returns a shallow copy of r whose body, if it has one, is
// watched; the copy keeps r's GetBody, so the transport can still rewind
// it itself.
func watch(r *http.Request) (*http.Request, *watchedBody) {
	if r.Body == nil || r.Body == http.NoBody {
		return r, nil
	}
	w := &watchedRequest{req: *r, body: watchedBody{ReadCloser: r.Body}}
	w.req.Body = &w.body
	return &w.req, &w.body
}

// watchedRequest is the copy watch makes, with its body, allocated
// together.
type watchedRequest struct {
	req  http.Request
	body watchedBody
}
