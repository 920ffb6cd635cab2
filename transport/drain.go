package transport

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"
)

// DrainLimit is the most [Drain] reads from a body before closing it. A
// larger rest costs the connection (it is closed instead of reused) but never
// unbounded reading of a hostile or huge body.
const DrainLimit = 64 << 10

// DrainWait is the longest [Drain] and [PeekBody] wait for a body's
// bytes: a server that sent an answer's head and stalls its body costs the
// connection, not the time of whatever comes next (a retry, a fallback
// model). The request's end (its context's deadline or cancellation, when
// the answer names its request) cuts the wait short, as DrainWait's end
// does.
const DrainWait = 500 * time.Millisecond

// Drain reads at most [DrainLimit] bytes of resp's body, for at most
// [DrainWait], and closes it, so that the connection under a response that
// is thrown away (a 429 or 5xx about to be retried) goes back to the pool.
// A body still read when DrainWait has passed, or when the context of
// resp.Request ends (if resp.Request is set), is closed then, from another
// goroutine, which ends the read of a net/http body (a body of another
// kind must allow that too, or never stall): a body that stalls does not
// hold the request past its deadline or its cancellation, whoever made
// the body (net/http, a cache, a decoder, a test double). The body of a
// request already ended is closed at once, unread. A nil resp or body is
// a no-op.
func Drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	if _, inTime, _ := readWithin(resp.Request, io.Discard, resp.Body, DrainLimit); inTime {
		_ = resp.Body.Close()
	}
}

// readWithin copies at most n bytes of body to w, for at most
// [DrainWait] and, when req is not nil, until its context ends, and
// returns io.CopyN's count and error. A body still read when either comes
// first is closed then, from another goroutine, which ends the read (see
// [Drain]), and inTime is false; so is one of a request already ended,
// closed before it is read. A body read in time is left open. Whatever
// reads an answer's body before returning the answer (Drain, PeekBody)
// reads it through readWithin, so that a server that stalls a body costs
// the body, not the request's time.
//
// The timer settles who closes the body, once: its own end, or whoever
// stops it first (the context's end closes the body, the read's end
// leaves it open). A context that never ends (Background, no deadline)
// costs nothing more than the timer.
func readWithin(req *http.Request, w io.Writer, body io.ReadCloser, n int64) (written int64, inTime bool, err error) {
	stall := time.AfterFunc(DrainWait, func() { _ = body.Close() })
	if req != nil {
		if ctx := req.Context(); ctx.Done() != nil {
			end := func() {
				if stall.Stop() {
					_ = body.Close()
				}
			}
			if ctx.Err() != nil {
				end()
			} else {
				stop := context.AfterFunc(ctx, end)
				defer stop()
			}
		}
	}
	written, err = io.CopyN(w, body, n)
	return written, stall.Stop(), err
}

// PeekBody reads at most n bytes of resp's body, for at most [DrainWait],
// and puts them back: resp.Body then reads them, then the rest, and its
// Close closes the body it replaced. It is how a decorator looks at an
// answer's body (an error's code) before it decides what to do with the
// answer, without losing a byte of it for the caller, and without letting
// a server that stalls the body hold the request: a body still read when
// DrainWait has passed, or when the context of resp.Request ends (if
// resp.Request is set), is closed then, as [Drain] closes one, and its
// rest fails as a closed body does. The body of a request already ended
// is closed at once, unread.
//
// The error is nil when peek is the body's first n bytes, or all of it; it
// is the read's error otherwise (the body failed, or was closed for
// stalling or for the request's end), and peek is what came before it. A
// nil resp or body peeks nothing.
func PeekBody(resp *http.Response, n int64) (peek []byte, err error) {
	if resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		return nil, nil
	}
	var buf bytes.Buffer
	_, _, err = readWithin(resp.Request, &buf, resp.Body, n)
	rest := io.Reader(resp.Body)
	if err == io.EOF {
		// Read to its end: there is no rest, even if the timer or the
		// request's end closed the body as the read ended.
		rest, err = http.NoBody, nil
	}
	peek = buf.Bytes()
	resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(peek), rest), c: resp.Body}
	return peek, err
}

// peekedBody is a body whose first bytes were read and put back.
type peekedBody struct {
	io.Reader
	c io.Closer
}

func (b *peekedBody) Close() error { return b.c.Close() }
