package bucket

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// maxHeldPeek is how much of a 429's body a held refusal looks at: error
// bodies are a few hundred bytes.
const maxHeldPeek = 4 << 10

// heldRefusal is a 429 whose body has not told yet whether the limit
// refused it (see WithNotLimited): the refusal is applied, or dropped,
// once.
type heldRefusal struct {
	c         *control
	req       *http.Request
	sig       transport.Signals
	now, sent time.Time
	n         float64
	report    bool // its pause is reported (EventPaused): not a replay's
	done      atomic.Bool
}

// holdRefusal holds the refusal of the 429 resp to req, whose signals are
// sig, until the bytes read of its body tell whether the limit refused it.
// report: its pause is reported, as the limiter that saw the answer first
// reports it (a learning key's replay to the limiter it learnt does not).
func (c *control) holdRefusal(req *http.Request, sig *transport.Signals, resp *http.Response, now, sent time.Time, n float64, report bool) {
	h := &heldRefusal{c: c, req: req, sig: *sig, now: now, sent: sent, n: n, report: report}
	c.mu.Lock()
	c.held = append(c.held, h)
	c.nheld.Add(1)
	c.mu.Unlock()
	resp.Body = &refusalSniffer{ReadCloser: resp.Body, h: h, header: resp.Header}
}

// applyHeld applies every refusal held: a request is about to be sent,
// and a 429 not told of yet is taken for the limit's.
func (c *control) applyHeld() {
	c.mu.Lock()
	held := c.held
	c.held = nil
	c.mu.Unlock()
	for _, h := range held {
		h.apply()
	}
}

// settle takes h off the refusals held, once; it reports whether it was
// still held.
func (h *heldRefusal) settle() bool {
	if !h.done.CompareAndSwap(false, true) {
		return false
	}
	c := h.c
	c.mu.Lock()
	for i, o := range c.held {
		if o == h {
			c.held = append(c.held[:i], c.held[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	c.nheld.Add(-1)
	return true
}

// apply applies the refusal: the limit's.
func (h *heldRefusal) apply() {
	if h.settle() {
		h.c.refused(h.req, &h.sig, h.now, h.sent, h.n, h.report)
	}
}

// drop drops the refusal: no limit's, the request is only no longer in
// flight.
func (h *heldRefusal) drop() {
	if h.settle() {
		c := h.c
		c.mu.Lock()
		c.saw(h.sent, h.n)
		c.mu.Unlock()
	}
}

// refusalSniffer passes a held 429's body through unchanged, and settles
// its refusal by the bytes read through it. It may be closed while a read
// is under way (a drain that gives up on a stalled body): mu guards what
// was seen.
type refusalSniffer struct {
	io.ReadCloser
	h      *heldRefusal
	header http.Header
	mu     sync.Mutex
	seen   []byte
}

func (s *refusalSniffer) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if s.h.done.Load() {
		return n, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, p[:min(n, maxHeldPeek-len(s.seen))]...)
	switch {
	case s.h.c.cfg.notLimited(s.header, s.seen):
		s.h.drop()
	case err != nil || len(s.seen) >= maxHeldPeek:
		s.h.apply()
	}
	return n, err
}

// Close settles a refusal still held by what was read: a body closed
// unread is the limit's.
func (s *refusalSniffer) Close() error {
	s.mu.Lock()
	if !s.h.done.Load() {
		if len(s.seen) > 0 && s.h.c.cfg.notLimited(s.header, s.seen) {
			s.h.drop()
		} else {
			s.h.apply()
		}
	}
	s.mu.Unlock()
	return s.ReadCloser.Close()
}
