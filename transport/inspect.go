package transport

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
)

// Info is what [Inspect] read of a request, handed to every decorator
// under it in the request's context, so that the body is read once for
// the whole stack: [RequestModel], [EstimateTokens], [Replay] and
// [Fallback] use it instead of reading the body again.
type Info struct {
	// Endpoint is the request's endpoint, as [Endpoint] names it.
	Endpoint string
	// Model is the top-level "model" of the request's JSON body (see
	// [RequestModel]); "" when it names none, or the body was larger than
	// the limit.
	Model string

	url  *url.URL      // the URL of the request the info describes
	once io.ReadCloser // the body sent once: too large to buffer
	// tokens is the estimate: the prompt's in the high 32 bits, the
	// output's in the low 31, bit 31 set once made.
	tokens atomic.Int64
}

// infoKey is the context key of an Info.
type infoKey struct{}

// inspected is the context of an inspected request: one allocation that is
// both the context and the Info, and the writer its body is read with.
type inspected struct {
	context.Context
	info Info
	loc  locator
}

func (c *inspected) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return &c.info
	}
	return c.Context.Value(key)
}

// InfoOf returns what [Inspect] read of req, or nil when req was not
// inspected. An Info describes the request it was made for and the copies
// of it that decorators send on (a shallow copy, whose URL is the same):
// a request made anew with the same context, whose URL differs, is not
// described by it, and is read on its own.
func InfoOf(req *http.Request) *Info {
	if req == nil {
		return nil
	}
	info, _ := req.Context().Value(infoKey{}).(*Info)
	if info == nil || info.url != req.URL {
		return nil
	}
	return info
}

// inspectedOnce reports whether req's body is the one [Inspect] found too
// large to buffer: it is sent once, and nobody reads it to buffer it again.
func inspectedOnce(req *http.Request) bool {
	info := InfoOf(req)
	return info != nil && info.once != nil && info.once == req.Body
}

// Inspect returns a middleware that reads each request once for every
// decorator under it: a preset puts it outermost. It finds the endpoint
// and the body's model (see [RequestModel]), and passes on a copy of the
// request whose context carries them ([InfoOf]); the decorators of package
// steady use that instead of reading the body again.
//
// A body with GetBody (as [http.NewRequest] sets for bytes, strings and
// buffers) is read through GetBody, in pieces that are not kept: an
// in-memory body of any size costs no copy. A body without GetBody is
// buffered once, at most [WithBodyLimit] bytes ([DefaultReplayLimit] by
// default), and the request passed on has GetBody, so that retries and
// fallbacks never buffer it again; a larger body is sent once, as it is,
// and nothing under Inspect tries to buffer it.
//
// A decorator under Inspect that changes a request's body must give the
// new request an Info of its own or none (Fallback, which rewrites the
// model, does); one that keeps the body may send shallow copies of the
// request, which keep its Info. A nil next RoundTripper means
// [http.DefaultTransport].
func Inspect(opts ...Option) Middleware {
	cfg := newOptions(opts)
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		return &inspector{next: next, limit: cfg.bodyLimit}
	}
}

type inspector struct {
	next  http.RoundTripper
	limit int64
}

func (in *inspector) RoundTrip(req *http.Request) (*http.Response, error) {
	send, err := InspectRequest(req, in.limit, nil)
	if err != nil {
		return nil, err
	}
	return in.next.RoundTrip(send)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (in *inspector) CloseIdleConnections() { CloseIdleConnections(in.next) }

// InspectRequest is what [Inspect] does to one request, for a decorator
// that is itself outermost (a preset's transport): it returns the request
// to send on, a shallow copy of req that carries its [Info]. prepare, when
// not nil, is called on that copy before it is read, to set what the
// copy's URL and headers must be (a preset moves a request to its API root
// and adds its key): it may replace the copy's URL and Header, never
// change what they point to, which is the caller's. limit is the most of
// a body without GetBody that is buffered (0 means [DefaultReplayLimit]).
//
// The error is a failure reading the body, which is then closed; nothing
// must be sent.
func InspectRequest(req *http.Request, limit int64, prepare func(*http.Request)) (*http.Request, error) {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	c := &inspected{Context: req.Context()}
	send := req.WithContext(c)
	if prepare != nil {
		prepare(send)
	}
	c.info.url = send.URL
	if send.URL != nil {
		c.info.Endpoint = endpointOf(send.URL.Path)
	}
	switch {
	case send.Body == nil || send.Body == http.NoBody:
	case send.GetBody != nil:
		c.info.Model = c.loc.modelOf(send, limit)
	default:
		if send.ContentLength > limit {
			c.info.once = send.Body
			break
		}
		buf, tooLarge, err := readBodyBuffer(send.Body, send.ContentLength, limit)
		if err != nil {
			_ = send.Body.Close()
			return nil, err
		}
		if tooLarge {
			once := newOnceBody(buf, send.Body)
			send.Body, c.info.once = once, once
			break
		}
		_ = send.Body.Close()
		send.Body, send.GetBody, send.ContentLength = buf.reader(), buf.getBody, buf.size
		c.info.Model = modelOfBuffer(buf)
	}
	return send, nil
}

// withModel returns a shallow copy of req whose context describes it with
// model: the request Fallback made by rewriting the model of req.
func withModel(req *http.Request, endpoint, model string) *http.Request {
	c := &inspected{Context: req.Context()}
	c.info.Endpoint, c.info.Model = endpoint, model
	send := req.WithContext(c)
	c.info.url = send.URL
	return send
}

// EstimateTokens estimates the tokens of text a request counts against a
// provider's token limit: its prompt's and the most it lets the model
// generate (see [RequestTokens]), at least 1.
func EstimateTokens(req *http.Request) int {
	prompt, output := RequestTokens(req)
	return int(min(max(int64(prompt)+int64(output), 1), math.MaxInt32))
}

// RequestTokens estimates the tokens of a request's prompt and the most it
// may generate, as providers count them against their token limits.
//
// prompt is the characters of the request's prompt text over four, rounded
// up. Prompt text is what OpenAI's, Together's and Anthropic's request
// bodies carry it in: the content of chat messages (a string, or parts
// with "text"), a completion's prompt, embedding inputs, Anthropic's system
// prompt; images, roles and tool definitions do not count. output is the
// largest of max_tokens, max_completion_tokens and max_output_tokens.
//
// The body is read through GetBody (once per request under [Inspect],
// which keeps the estimate), scanned as it streams and not kept. A request
// without GetBody, or whose body is not a JSON object or cannot be read,
// is (1, 0); the body is checked as [FindModel] checks it (inside nested
// values only brackets and strings), so a body a server will refuse may
// still be counted. Each estimate is at most math.MaxInt32.
func RequestTokens(req *http.Request) (prompt, output int) {
	info := InfoOf(req)
	if info != nil {
		if t := info.tokens.Load(); t != 0 {
			return int(t >> 32), int(t & math.MaxInt32)
		}
	}
	prompt = 1
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		s := getScanner(true)
		if scanGetBody(req, s) && s.ok() {
			prompt = int(min((s.chars+3)/4, math.MaxInt32))
			output = int(s.maxTokens)
		}
		putScanner(s)
	}
	if info != nil {
		info.tokens.Store(int64(prompt)<<32 | int64(output) | 1<<31)
	}
	return prompt, output
}

// errStop ends a scan early: the body was larger than the limit, or all
// that was needed has been read.
var errStop = errors.New("steady: scan stopped")

// copyPool holds the buffers of bodies that are read piece by piece (a
// GetBody that is not an in-memory reader).
var copyPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// scanGetBody feeds a fresh body from req's GetBody to s, and reports
// whether all of it was read (or the model located at once).
func scanGetBody(req *http.Request, s *scanner) bool {
	err := writeGetBody(req, s, &s.whole)
	return err == nil || s.located
}

// errNoBody is writeGetBody's error when GetBody gives no body.
var errNoBody = errors.New("steady: GetBody gave no body")

// writeGetBody writes a fresh body from req's GetBody to w. An in-memory
// reader writes itself at once, in one piece; *whole, when not positive,
// is then set to its length.
func writeGetBody(req *http.Request, w io.Writer, whole *int64) error {
	rc, err := req.GetBody()
	if err != nil || rc == nil {
		return errNoBody
	}
	defer rc.Close()
	if wt, ok := rc.(io.WriterTo); ok {
		if l, ok := rc.(interface{ Len() int }); ok && *whole <= 0 {
			*whole = int64(l.Len()) // an in-memory reader, of a length not declared
		}
		_, err = wt.WriteTo(w)
	} else {
		bp := copyPool.Get().(*[]byte)
		_, err = io.CopyBuffer(w, rc, *bp)
		copyPool.Put(bp)
	}
	return err
}

// locator is the writer Inspect reads a body through GetBody with. A body
// written whole, at once, as an in-memory reader writes itself, has its
// model located at its ends (see locateModel) with no scanner at all;
// any other is handed on to a scanner of the pool. It lives in the
// inspected context, which is allocated anyway: reading the body
// allocates nothing, and takes nothing from the pool, when the model is
// where SDKs write it.
type locator struct {
	limit, whole int64
	s            *scanner // the scanner handed the body, once one is
	located      bool
	model        string
}

// Write takes the next bytes of the body, as scanner.Write does.
func (l *locator) Write(p []byte) (int, error) {
	if l.s == nil {
		if int64(len(p)) > l.limit {
			return 0, errStop
		}
		if l.whole > 0 && int64(len(p)) == l.whole {
			if m, _, decided := locateModel(p); decided {
				l.model, l.located = m, true
				return len(p), errStop
			}
		}
		// The model must be found by a scan: the scanner takes it from
		// here, located at once no more.
		l.s = getScanner(false)
		l.s.limit = l.limit
	}
	return l.s.Write(p)
}

// modelOf finds the model of req's body through GetBody, reading at most
// limit bytes (more than 0), as modelOfGetBody does.
func (l *locator) modelOf(req *http.Request, limit int64) string {
	if req.ContentLength > limit {
		return ""
	}
	l.limit, l.whole = limit, req.ContentLength
	err := writeGetBody(req, l, &l.whole)
	s := l.s
	l.s = nil
	if l.located {
		return l.model
	}
	if s == nil { // nothing written, or too much at once
		return ""
	}
	defer putScanner(s)
	if err != nil {
		return ""
	}
	m, _ := s.foundModel()
	return m
}

// modelOfGetBody finds the model of req's body through GetBody, reading
// at most limit bytes.
func modelOfGetBody(req *http.Request, limit int64) string {
	if req.ContentLength > limit {
		return ""
	}
	s := getScanner(false)
	defer putScanner(s)
	s.limit, s.whole = limit, req.ContentLength
	if !scanGetBody(req, s) {
		return ""
	}
	if s.located {
		return s.locModel
	}
	m, _ := s.foundModel()
	return m
}

// modelOfBuffer finds the model of a buffered body.
func modelOfBuffer(buf *bodyBuffer) string {
	if b, ok := buf.bytes(); ok {
		if m, _, decided := locateModel(b); decided {
			return m
		}
	}
	s := getScanner(false)
	defer putScanner(s)
	buf.writeTo(s)
	m, _ := s.foundModel()
	return m
}
