package transport

import (
	"io"
	"net/http"
	"time"
)

// DrainLimit is the most [Drain] reads from a body before closing it. A
// larger rest costs the connection (it is closed instead of reused) but never
// unbounded reading of a hostile or huge body.
const DrainLimit = 64 << 10

// DrainWait is the longest [Drain] waits for a body's bytes: a server
// that sent an answer's head and stalls its body costs the connection,
// not the time of whatever comes next (a retry, a fallback model).
const DrainWait = 500 * time.Millisecond

// Drain reads at most [DrainLimit] bytes of resp's body, for at most
// [DrainWait], and closes it, so that the connection under a response that
// is thrown away (a 429 or 5xx about to be retried) goes back to the pool.
// A body still read when DrainWait has passed is closed then, from another
// goroutine, which ends the read of a net/http body (a body of another
// kind must allow that too, or never stall). A nil resp or body is a
// no-op.
func Drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	body := resp.Body
	stall := time.AfterFunc(DrainWait, func() { _ = body.Close() })
	_, _ = io.CopyN(io.Discard, body, DrainLimit)
	if stall.Stop() {
		_ = body.Close()
	}
}
