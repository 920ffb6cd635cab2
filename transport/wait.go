package transport

import (
	"context"
	"errors"
	"time"
)

// ErrDeadline is returned by a wait that was refused because it could not
// end before the context's deadline. It matches [context.DeadlineExceeded]
// with [errors.Is], which golang.org/x/time/rate's equivalent error does not
// (golang/go#54541), and is a timeout as that is (its Timeout method,
// which net.Error and http.Client's url.Error read).
var ErrDeadline error = deadlineError{}

type deadlineError struct{}

func (deadlineError) Error() string {
	return "steady: wait would outlast the context deadline"
}

func (deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

func (deadlineError) Timeout() bool { return true }

// ErrNotSent is matched (with [errors.Is]) by the error of a request that
// a decorator refused before sending it: a limiter whose wait would be too
// long or would outlast the deadline, or whose wait the request's context
// ended. Nothing reached the server, so the error says nothing of it: a
// circuit breaker does not count it as the model's failure, and a limiter
// around gives the request's tokens back. A decorator marks such an error
// with [NotSent]; one outside asks with errors.Is, without knowing the
// decorator that refused.
var ErrNotSent = errors.New("steady: request not sent")

// NotSent returns err marked as the error of a request never sent (nil
// when err is nil). The error reads as err, unwraps to it, matches
// [ErrNotSent], and is a timeout when err is one, for what reads Timeout
// without unwrapping (http.Client's url.Error).
func NotSent(err error) error {
	if err == nil {
		return nil
	}
	return &notSentError{err}
}

type notSentError struct{ err error }

func (e *notSentError) Error() string        { return e.err.Error() }
func (e *notSentError) Unwrap() error        { return e.err }
func (e *notSentError) Is(target error) bool { return target == ErrNotSent }

func (e *notSentError) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.err, &t) && t.Timeout()
}

// Fits reports whether a wait of d, started now, ends before ctx's
// deadline. A wait that ends at the deadline itself does not fit: whatever
// it waited for would start with no time left, and a timer due at the
// deadline races the context's own, so such a wait would end either way.
func Fits(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Now().Add(d).Before(dl)
}

// Sleep waits for d or until ctx is done. A wait that would not end before
// ctx's deadline ([Fits]) is not started: Sleep returns [ErrDeadline] at
// once. When ctx ends during the wait, Sleep returns its cause
// ([context.Cause]).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	if d <= 0 {
		return nil
	}
	if !Fits(ctx, d) {
		return ErrDeadline
	}
	return wait(ctx, d)
}

// SleepUntil waits until t, or until ctx is done, when it returns its
// cause ([context.Cause]). Unlike [Sleep] it does not check the deadline
// again: it is for a wait whose end was found to fit it ([Fits]) some time
// before it starts (an answer drained, a hook told), which that time must
// not push past the deadline.
func SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	return wait(ctx, time.Until(t))
}

// wait waits d, or until ctx is done, when it returns its cause.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
