package transport

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// DefaultReplayLimit is the largest body [Replay] buffers when the request
// has no GetBody: 32 MiB, well above any chat or embedding request.
const DefaultReplayLimit = 32 << 20

// Replay sends a request's body on every attempt of a decorator that tries
// more than once. Set it up with [Replay.Reset], then ask [Replay.Request]
// for the request of each attempt.
//
// The first attempt sends the caller's own request, so the happy path costs
// nothing. Later attempts get a copy of the request whose body is a fresh
// reader over the same bytes: from GetBody when the request has it (as
// [http.NewRequest] sets for bytes, strings and buffers), else from a buffer
// of at most the limit, read when the Replay is set up. A body larger than
// the limit, or one whose GetBody fails, is sent once and
// [Replay.CanReplay] reports false.
//
// A request that [Inspect] read is not read again: its body has GetBody
// (Inspect buffered it once), or was found too large to buffer and is sent
// once.
//
// Replay is a value meant to live on the stack of one RoundTrip call.
type Replay struct {
	req      *http.Request
	getBody  func() (io.ReadCloser, error)
	buf      *bodyBuffer
	once     io.ReadCloser // a body that can be sent once only
	attempts int
	canRetry bool
}

// Reset prepares r for req. limit is the most it buffers of a body without
// GetBody (0 means [DefaultReplayLimit]; negative means never buffer). The
// error is a failure reading the body, the request's context ending while
// it is read (the body is closed then, which ends a read that stalls), or
// a body whose length is not its ContentLength (which net/http refuses
// too); the body is then closed and the request must not be sent.
func (r *Replay) Reset(req *http.Request, limit int64) error {
	return r.ResetInfo(req, nil, limit)
}

// ResetInfo is [Replay.Reset] for a request whose [Info] is handed beside
// it ([InfoRoundTripper]): info, or the Info the request carries when info
// is nil.
func (r *Replay) ResetInfo(req *http.Request, info *Info, limit int64) error {
	*r = Replay{req: req, canRetry: true}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return nil
	case req.GetBody != nil:
		r.getBody = req.GetBody
		return nil
	}
	if limit == 0 {
		limit = DefaultReplayLimit
	}
	if info == nil {
		info = InfoOf(req)
	}
	if limit < 0 || req.ContentLength > limit || inspectedOnce(req, info) {
		r.canRetry = false
		return nil
	}
	buf, tooLarge, err := readRequestBody(req, limit)
	if err != nil {
		_ = req.Body.Close()
		return err
	}
	if tooLarge { // send what was read, then the rest, once
		r.canRetry = false
		r.once = newOnceBody(buf, req.Body)
		return nil
	}
	_ = req.Body.Close()
	r.buf = buf
	return nil
}

// Buffered reports whether the attempts send a buffer of the body read by
// [Replay.Reset], rather than the caller's body or GetBody's.
func (r *Replay) Buffered() bool { return r.buf != nil }

// CanReplay reports whether another attempt can send the body again.
func (r *Replay) CanReplay() bool { return r.canRetry }

// Attempts reports how many requests [Replay.Request] has handed out.
func (r *Replay) Attempts() int { return r.attempts }

// ErrNotReplayable is returned by [Replay.Request] when asked for a second
// attempt of a request whose body can be sent only once.
var ErrNotReplayable = errors.New("steady: request body cannot be sent again")

// Request returns the request for the next attempt: the caller's own on the
// first, where its body can be used as it is, and otherwise a shallow copy
// with a fresh body. It never modifies the caller's request.
func (r *Replay) Request() (*http.Request, error) {
	r.attempts++
	first := r.attempts == 1
	switch {
	case r.once != nil:
		if !first {
			return nil, ErrNotReplayable
		}
		return r.withBody(r.once, -1), nil
	case r.buf != nil:
		return r.withBody(r.buf.reader(), r.buf.size), nil
	case first:
		return r.req, nil
	case !r.canRetry:
		return nil, ErrNotReplayable
	case r.getBody == nil: // no body at all
		return r.req, nil
	}
	body, err := r.getBody()
	if err != nil || body == nil {
		r.canRetry = false
		if err == nil {
			return nil, errNoBody // net/http would refuse a nil body its ContentLength belies
		}
		return nil, fmt.Errorf("steady: GetBody: %w", err)
	}
	return r.withBody(body, r.req.ContentLength), nil
}

// Close closes the caller's body if no attempt has been handed it, as the
// RoundTripper contract asks when a decorator gives up before sending.
func (r *Replay) Close() {
	if r.attempts == 0 && r.req != nil && r.req.Body != nil && r.buf == nil {
		_ = r.req.Body.Close()
	}
}

func (r *Replay) withBody(body io.ReadCloser, n int64) *http.Request {
	c := *r.req
	c.Body = body
	c.ContentLength = n
	if r.buf != nil {
		c.GetBody = r.buf.getBody
	}
	return &c
}
