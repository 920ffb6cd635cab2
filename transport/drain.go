package transport

import (
	"io"
	"net/http"
)

// DrainLimit is the most [Drain] reads from a body before closing it. A
// larger rest costs the connection (it is closed instead of reused) but never
// unbounded reading of a hostile or huge body.
const DrainLimit = 64 << 10

// Drain reads at most [DrainLimit] bytes of resp's body and closes it, so that
// the connection under a response that is thrown away (a 429 or 5xx about to
// be retried) goes back to the pool. A nil resp or body is a no-op.
func Drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, DrainLimit)
	_ = resp.Body.Close()
}
