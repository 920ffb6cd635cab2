package retry

import (
	"errors"
	"fmt"
	"strconv"
)

// Error is the error of a request the decorator gave up on without a
// response to return.
type Error struct {
	// Attempts is how many times the request was sent; 0 when it was not
	// sent at all (its context was already done, or its body unreadable).
	Attempts int

	// Status is the last attempt's HTTP status when it had a response that
	// was discarded before the wait that Err cut short; otherwise 0.
	Status int

	// Err is why the request failed: the last attempt's transport error, or
	// the context's cause when a wait was cut short, or the body's error.
	Err error

	// Deadline is set when the loop stopped because the next wait would
	// have outlasted the context's deadline; it is [transport.ErrDeadline].
	Deadline error
}

// Error reads "steady/retry: 5 attempts: <cause>".
func (e *Error) Error() string {
	msg := "steady/retry: " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		msg += "s"
	}
	if e.Status != 0 {
		msg += " (last status " + strconv.Itoa(e.Status) + ")"
	}
	msg += ": " + fmt.Sprint(e.Err)
	if e.Deadline != nil {
		msg += "; not retried: " + e.Deadline.Error()
	}
	return msg
}

// Unwrap returns the cause and, when set, the deadline error, for
// [errors.Is] and [errors.As].
func (e *Error) Unwrap() []error {
	if e.Deadline != nil {
		return []error{e.Err, e.Deadline}
	}
	return []error{e.Err}
}

// Timeout reports whether the request ran out of time: the next wait
// would have outlasted the deadline, or the cause is a timeout (the last
// attempt's deadline, a dial that timed out). http.Client's url.Error,
// and whatever else asks Timeout without unwrapping, sees the request as
// the timeout it would be without the decorator.
func (e *Error) Timeout() bool {
	if e.Deadline != nil {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}
