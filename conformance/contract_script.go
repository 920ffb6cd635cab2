package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The suite's requests carry this key, so that a middleware that puts it in
// an error is caught; it is not a real key of any provider.
const contractSecret = "sk-conformance-0123456789abcdef"

// contractCallHeader names the call a request belongs to, for attributing
// attempts when a middleware drops the caller's context values.
const contractCallHeader = "X-Conformance-Call"

// maxCallAttempts bounds the attempts of one call: past it the inner
// transport stops answering, so a middleware that retries without end shows
// as a call that never returns instead of spinning forever in a bubble whose
// clock cannot advance. Once the call is released, an attempt past the bound
// ends the goroutine making it, the one way to stop a loop that heeds
// neither errors nor its context.
const maxCallAttempts = 50

type callKey struct{}

// scriptStep is what the inner transport does for one attempt of a call.
type scriptStep struct {
	status int
	header http.Header
	body   []byte
	err    error // fail the attempt with err
	hang   bool  // answer only when the attempt's context is done
	stream bool  // answer 200 with a body the scenario writes chunk by chunk
	// upgrade answers 101 Switching Protocols, whose body is the upgraded
	// connection: it reads and writes, as net/http hands it over.
	upgrade bool
}

// stepAnswer is a step answering status with body and the header pairs kv.
func stepAnswer(status int, body []byte, kv ...string) scriptStep {
	h := http.Header{"Content-Type": {"application/json"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return scriptStep{status: status, header: h, body: body}
}

// errContractReset is a connection reset after the request was written, as
// net/http reports one: a middleware that classifies errors sees
// syscall.ECONNRESET.
var errContractReset error = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}

// errContractClosedAfterWrite is the server closing the connection after
// the request was written and before any answer, as net/http reports it:
// a middleware that classifies errors sees io.EOF, not a reset.
var errContractClosedAfterWrite error = fmt.Errorf("net/http: Transport failed to read from server: %w", io.EOF)

// writtenThenFailed reports whether err, as a step's, is a connection that
// failed after the request was written: the server may have processed it.
func writtenThenFailed(err error) bool {
	return errors.Is(err, errContractReset) || errors.Is(err, errContractClosedAfterWrite)
}

// errReleased ends attempts still hanging when a scenario is over.
var errReleased = errors.New("conformance: scenario over, attempt released")

// watchedReader is a body that records how it is used: bytes read, whether
// it reached EOF, whether a Read is in progress, and whether it was closed.
type watchedReader struct {
	r io.Reader

	mu      sync.Mutex
	read    int64
	eof     bool
	closed  bool
	reading int
}

func newWatchedReader(r io.Reader) *watchedReader { return &watchedReader{r: r} }

var errContractClosed = errors.New("conformance: read on closed body")

func (w *watchedReader) Read(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, errContractClosed
	}
	w.reading++
	w.mu.Unlock()
	n, err := w.r.Read(p)
	w.mu.Lock()
	w.reading--
	w.read += int64(n)
	if err == io.EOF {
		w.eof = true
	}
	w.mu.Unlock()
	return n, err
}

func (w *watchedReader) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	if c, ok := w.r.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

type readerState struct {
	read    int64
	eof     bool
	closed  bool
	reading int
}

func (w *watchedReader) state() readerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return readerState{w.read, w.eof, w.closed, w.reading}
}

// attemptSeen is one request as the inner transport received it.
type attemptSeen struct {
	body          []byte // nil when the attempt had no body or was not read
	sent          bool   // the body was read (the context was live)
	contentLength int64
	at            time.Time // when it reached the inner transport
	answered      bool      // the inner transport answered it with a response
}

// innerResponse is one response the inner transport made.
type innerResponse struct {
	resp *http.Response
	body *watchedReader
	data []byte        // what the body holds; nil for a stream
	conn *upgradedConn // the body of a 101, which writes too
	// header is a copy of the response's header as the inner transport
	// made it, which a middleware may not see.
	header http.Header
}

// upgradedConn is the body of a 101: the connection, which the caller
// writes to as well as reads.
type upgradedConn struct {
	*watchedReader
	mu      sync.Mutex
	written []byte
}

func (u *upgradedConn) Write(p []byte) (int, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.written = append(u.written, p...)
	return len(p), nil
}

// wrote is what the caller wrote to the connection.
func (u *upgradedConn) wrote() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]byte(nil), u.written...)
}

// callRun is one call of a scenario: the caller's request, its script, and
// everything seen of it.
type callRun struct {
	name   string
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	snap   requestSnapshot
	sent   []byte // the body the caller sent; nil for none
	steps  []scriptStep
	stream bool
	// crowded is set for a call sent beside others' on one transport,
	// whose failures may open a breaker this call's retry then meets.
	crowded bool

	callerBody *watchedReader
	release    chan struct{}
	releaseMu  sync.Once

	mu         sync.Mutex
	gotBodies  []*watchedReader // handed out by GetBody
	attempts   []attemptSeen
	responses  []innerResponse
	pipeR      *io.PipeReader
	pipeW      *io.PipeWriter
	midChanges map[string]bool
	// resetAfter is the attempt (from 1) whose written request met a
	// connection reset; 0 for none.
	resetAfter int
	// inFlight counts the attempts written and not yet answered; okAfter
	// is the attempt (from 1) answered 2xx, 0 for none: a request sent
	// again then is a duplicate the server processes too.
	inFlight, okAfter int

	// Set by the goroutine calling RoundTrip before done is closed.
	done         chan struct{}
	start        time.Time
	resp         *http.Response
	err          error
	panicked     any
	returnedAt   time.Time
	readAtReturn []int64

	// Set by the checks.
	returned     int // index of the inner response returned; -1 for none
	returnedData []byte
}

type callSpec struct {
	method  string
	body    []byte // nil: no body
	getBody bool
	steps   []scriptStep
	stream  bool
}

// newCall makes a call whose context is derive applied to a context that
// carries the call, so every attempt can be traced to its call.
func newCall(name, id string, spec callSpec, derive func(context.Context) (context.Context, context.CancelFunc)) *callRun {
	c := &callRun{
		name: name, id: id,
		sent: spec.body, steps: spec.steps, stream: spec.stream,
		release: make(chan struct{}), done: make(chan struct{}),
		midChanges: map[string]bool{}, returned: -1,
	}
	c.ctx, c.cancel = derive(context.WithValue(context.Background(), callKey{}, c))
	req, err := http.NewRequestWithContext(c.ctx, spec.method, "https://api.conformance.test/v1/chat/completions?call="+url.QueryEscape(id), nil)
	if err != nil {
		panic(err) // a fixed, valid URL
	}
	req.Header.Set("Authorization", "Bearer "+contractSecret)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(contractCallHeader, id)
	req.Header["X-Conformance-Multi"] = []string{"one", "two"}
	if spec.body != nil {
		c.callerBody = newWatchedReader(bytes.NewReader(spec.body))
		req.Body = c.callerBody
		req.ContentLength = int64(len(spec.body))
		if spec.getBody {
			body := spec.body
			req.GetBody = func() (io.ReadCloser, error) {
				w := newWatchedReader(bytes.NewReader(body))
				c.mu.Lock()
				c.gotBodies = append(c.gotBodies, w)
				c.mu.Unlock()
				return w, nil
			}
		}
	}
	c.req = req
	c.snap = snapshotOf(req)
	return c
}

func (c *callRun) releaseAll() {
	c.releaseMu.Do(func() { close(c.release) })
	c.mu.Lock()
	pr, pw := c.pipeR, c.pipeW
	c.mu.Unlock()
	if pw != nil {
		_ = pw.CloseWithError(errReleased)
	}
	if pr != nil {
		_ = pr.CloseWithError(errReleased)
	}
}

func (c *callRun) attemptCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.attempts)
}

func (c *callRun) snapshotResponses() []innerResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.responses)
}

// scriptedTransport is the inner transport of every scenario. It answers
// each attempt from its call's script, and records it.
type scriptedTransport struct {
	rec *ruleRecorder

	mu    sync.Mutex
	calls map[string]*callRun
}

func (s *scriptedTransport) add(c *callRun) {
	s.mu.Lock()
	s.calls[c.id] = c
	s.mu.Unlock()
}

// lookup finds the call an attempt belongs to: by the caller's context
// value, which every derived context keeps, else by header.
func (s *scriptedTransport) lookup(req *http.Request) *callRun {
	if c, ok := req.Context().Value(callKey{}).(*callRun); ok {
		if id := req.Header.Get(contractCallHeader); id != c.id {
			s.rec.fail(RuleConcurrentUse, "%s: an attempt in the context of call %q carried the headers of call %q", c.name, c.id, id)
		}
		return c
	}
	s.mu.Lock()
	c := s.calls[req.Header.Get(contractCallHeader)]
	s.mu.Unlock()
	if c != nil {
		s.rec.fail(RuleContextCanceled, "%s: an attempt reached the inner transport with a context that does not derive from the caller's (its values are gone, so is its cancellation)", c.name)
	}
	return c
}

func (s *scriptedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := s.lookup(req)
	if c == nil {
		closeRequestBody(req)
		s.rec.fail(RuleRequestUnmodified, "an attempt reached the inner transport that belongs to no call of the suite (the caller's context and %s header are both gone)", contractCallHeader)
		return nil, errors.New("conformance: attempt of an unknown call")
	}
	for _, change := range c.snap.diff(c.req) {
		c.mu.Lock()
		first := !c.midChanges[change]
		c.midChanges[change] = true
		n := len(c.attempts) + 1
		c.mu.Unlock()
		if first {
			s.rec.fail(RuleRequestUnmodified, "%s: while attempt %d was being sent, the caller's request had %s", c.name, n, change)
		}
	}
	s.rec.exercise(RuleSecretHidden)
	if host := attemptHost(req); host != attemptHost(c.req) && headerHolds(req.Header, contractSecret) {
		s.rec.fail(RuleSecretHidden, "%s: an attempt for %s, not the caller's host %s, carried the Authorization header's key", c.name, host, attemptHost(c.req))
	}
	ctx := req.Context()
	a := attemptSeen{contentLength: req.ContentLength, at: time.Now()}
	live := ctx.Err() == nil
	if live {
		// As net/http does, send the whole body, then close it.
		if req.Body != nil {
			a.body, _ = io.ReadAll(req.Body)
		}
		a.sent = true
	}
	closeRequestBody(req)
	c.mu.Lock()
	n := len(c.attempts)
	c.attempts = append(c.attempts, a)
	resetAfter, inFlight, okAfter := c.resetAfter, c.inFlight, c.okAfter
	if live {
		c.inFlight++
	}
	c.mu.Unlock()
	if live {
		defer func() {
			c.mu.Lock()
			c.inFlight--
			c.mu.Unlock()
		}()
	}
	switch once := !mayResend(c.req); {
	case once && resetAfter > 0:
		s.rec.fail(RuleNotResent, "%s: attempt %d was sent after attempt %d, whose request had been written, met a connection failure: a %s without an Idempotency-Key the server may have processed is sent again", c.name, n+1, resetAfter, c.req.Method)
	case once && live && inFlight > 0:
		s.rec.fail(RuleNotResent, "%s: attempt %d was sent while %d earlier attempts were still being answered: a %s without an Idempotency-Key the server is processing is sent again", c.name, n+1, inFlight, c.req.Method)
	case once && live && okAfter > 0:
		s.rec.fail(RuleNotResent, "%s: attempt %d was sent after attempt %d was answered 2xx: a %s without an Idempotency-Key the server processed is sent again", c.name, n+1, okAfter, c.req.Method)
	}
	if n >= maxCallAttempts {
		select {
		case <-c.release:
			s.rec.fail(RuleContextCanceled, "%s: the middleware kept retrying after %d attempts, its context cancelled and every attempt failing; the suite ended its goroutine", c.name, n)
			runtime.Goexit()
		default:
		}
		<-c.release
		return nil, fmt.Errorf("conformance: attempt %d refused: %w", n+1, errReleased)
	}
	if !live {
		return nil, ctx.Err()
	}
	st := c.steps[min(n, len(c.steps)-1)]
	switch {
	case st.hang:
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.ctx.Done():
			// An attempt's context derives from the caller's, and ends
			// with it (at once, or as soon as a context of another type
			// passes the cancellation on).
			t := time.NewTimer(cancelSlack)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-t.C:
			}
			s.rec.fail(RuleContextCanceled, "%s: attempt %d ran on after the caller's context ended: its context does not derive its cancellation from the caller's, so the request is left running against the server", c.name, n+1)
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-c.release:
				return nil, errReleased
			}
		case <-c.release:
			return nil, errReleased
		}
	case st.err != nil:
		if writtenThenFailed(st.err) && !mayResend(c.req) {
			s.rec.exercise(RuleNotResent)
			c.mu.Lock()
			if c.resetAfter == 0 {
				c.resetAfter = n + 1
			}
			c.mu.Unlock()
		}
		return nil, st.err
	}
	resp := &http.Response{
		Status:     strconv.Itoa(st.status) + " " + http.StatusText(st.status),
		StatusCode: st.status,
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:  st.header.Clone(),
		Request: req,
	}
	ir := innerResponse{resp: resp}
	if st.stream {
		pr, pw := io.Pipe()
		ir.body = newWatchedReader(pr)
		resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
		resp.Header = http.Header{"Content-Type": {"text/event-stream"}}
		resp.ContentLength = -1
		c.mu.Lock()
		c.pipeR, c.pipeW = pr, pw
		c.mu.Unlock()
		select { // a call released before its stream began ends it at once
		case <-c.release:
			_ = pw.CloseWithError(errReleased)
		default:
		}
	} else {
		ir.data = st.body
		ir.body = newWatchedReader(bytes.NewReader(st.body))
		resp.ContentLength = int64(len(st.body))
	}
	resp.Body = ir.body
	if st.upgrade {
		resp.StatusCode, resp.Status = http.StatusSwitchingProtocols, "101 Switching Protocols"
		resp.Header = http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}
		resp.ContentLength = -1
		ir.conn = &upgradedConn{watchedReader: ir.body}
		resp.Body = ir.conn
	}
	ir.header = resp.Header.Clone()
	c.mu.Lock()
	c.responses = append(c.responses, ir)
	c.attempts[n].answered = true
	if resp.StatusCode >= 200 && resp.StatusCode < 300 && c.okAfter == 0 {
		c.okAfter = n + 1
	}
	c.mu.Unlock()
	return resp, nil
}

// attemptHost is the host a request goes to: its URL's, which net/http
// dials whatever the Host field says.
func attemptHost(req *http.Request) string { return req.URL.Host }

// headerHolds reports whether a value of h contains secret.
func headerHolds(h http.Header, secret string) bool {
	for _, vs := range h {
		for _, v := range vs {
			if strings.Contains(v, secret) {
				return true
			}
		}
	}
	return false
}

// mayResend reports whether the caller's request may be sent twice: an
// idempotent method, or a header that lets the server deduplicate it.
func mayResend(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, key := req.Header["Idempotency-Key"]
	_, xkey := req.Header["X-Idempotency-Key"]
	return key || xkey
}

func closeRequestBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// requestSnapshot is a copy of the fields of a request a middleware could
// modify, taken before the call.
type requestSnapshot struct {
	method           string
	url              *url.URL
	urlString        string
	header           http.Header
	headerMap        uintptr
	body             io.ReadCloser
	getBody          uintptr
	contentLength    int64
	transferEncoding []string
	close            bool
	host             string
	trailer          http.Header
	ctx              context.Context
}

func snapshotOf(r *http.Request) requestSnapshot {
	return requestSnapshot{
		method:           r.Method,
		url:              r.URL,
		urlString:        r.URL.String(),
		header:           r.Header.Clone(),
		headerMap:        mapPointer(r.Header),
		body:             r.Body,
		getBody:          funcPointer(r.GetBody),
		contentLength:    r.ContentLength,
		transferEncoding: slices.Clone(r.TransferEncoding),
		close:            r.Close,
		host:             r.Host,
		trailer:          r.Trailer.Clone(),
		ctx:              r.Context(),
	}
}

// diff describes what changed in r since the snapshot. Header values are
// not shown: one of them is the API key.
func (s *requestSnapshot) diff(r *http.Request) []string {
	var d []string
	if r.Method != s.method {
		d = append(d, fmt.Sprintf("its Method changed from %q to %q", s.method, r.Method))
	}
	switch {
	case r.URL != s.url:
		d = append(d, "its URL replaced")
	case r.URL.String() != s.urlString:
		d = append(d, fmt.Sprintf("its URL changed from %s to %s", s.urlString, r.URL))
	}
	if mapPointer(r.Header) != s.headerMap {
		d = append(d, "its Header map replaced")
	}
	if keys := changedKeys(s.header, r.Header); len(keys) > 0 {
		d = append(d, fmt.Sprintf("its Header changed (%v)", keys))
	}
	if !sameValue(r.Body, s.body) {
		d = append(d, fmt.Sprintf("its Body replaced (by a %T)", r.Body))
	}
	if funcPointer(r.GetBody) != s.getBody {
		d = append(d, "its GetBody replaced")
	}
	if r.ContentLength != s.contentLength {
		d = append(d, fmt.Sprintf("its ContentLength changed from %d to %d", s.contentLength, r.ContentLength))
	}
	if !slices.Equal(r.TransferEncoding, s.transferEncoding) {
		d = append(d, "its TransferEncoding changed")
	}
	if r.Close != s.close {
		d = append(d, "its Close changed")
	}
	if r.Host != s.host {
		d = append(d, fmt.Sprintf("its Host changed from %q to %q", s.host, r.Host))
	}
	if keys := changedKeys(s.trailer, r.Trailer); len(keys) > 0 {
		d = append(d, fmt.Sprintf("its Trailer changed (%v)", keys))
	}
	if !sameValue(r.Context(), s.ctx) {
		d = append(d, "its context replaced")
	}
	return d
}

// changedKeys lists the keys added, removed or changed between two headers.
func changedKeys(was, is http.Header) []string {
	var keys []string
	for k, v := range was {
		if w, ok := is[k]; !ok || !slices.Equal(v, w) {
			keys = append(keys, k)
		}
	}
	for k := range is {
		if _, ok := was[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func mapPointer(h http.Header) uintptr {
	if h == nil {
		return 0
	}
	return uintptr(reflect.ValueOf(h).UnsafePointer())
}

func funcPointer(f func() (io.ReadCloser, error)) uintptr {
	if f == nil {
		return 0
	}
	return reflect.ValueOf(f).Pointer()
}

// sameValue compares two interface values without panicking on a dynamic
// type that is not comparable.
func sameValue(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}
