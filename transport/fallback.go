package transport

import (
	"bytes"
	"context"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"time"
)

// ModelHeader is the response header [Fallback] sets to the model that
// served the request: the asked one, or the alternate it fell back to.
const ModelHeader = "Steady-Model"

// ErrModelUnavailable is matched (with [errors.Is]) by errors that say a
// model cannot serve now without the request having been sent, such as a
// circuit breaker's open error. [Fallback] moves to the next model of the
// chain on such an error; package transport cannot know every decorator
// that fails fast, so they match this instead.
var ErrModelUnavailable = errors.New("steady: model unavailable")

// FallbackReason says why [Fallback] left a model for the next.
type FallbackReason string

const (
	// FallbackOverloaded: the model answered 503 or 529, after every
	// decorator inside Fallback (retries included) gave up.
	FallbackOverloaded FallbackReason = "overloaded"
	// FallbackNotFound: the model answered 404 with an error about the
	// model.
	FallbackNotFound FallbackReason = "not found"
	// FallbackUnavailable: a decorator inside Fallback failed fast with an
	// error matching [ErrModelUnavailable] (a breaker is open).
	FallbackUnavailable FallbackReason = "unavailable"
)

// Option configures [Fallback] and [Inspect].
type Option func(*options)

type options struct {
	events    EventFunc
	bodyLimit int64
}

func newOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.bodyLimit == 0 {
		o.bodyLimit = DefaultReplayLimit
	}
	return o
}

// WithEvents sets a hook that hears each switch of model as an [Event] of
// kind [EventFellBack], the kind every steady decorator reports: Model is
// the model asked, From and To the models left and tried next, Reason the
// [FallbackReason]. A panic in it is recovered and the event dropped. Each
// WithEvents adds a hook; every hook hears every event.
func WithEvents(fn EventFunc) Option {
	return func(c *options) { c.events = Events(c.events, fn) }
}

// WithBodyLimit sets the largest request body without GetBody that
// Fallback or Inspect buffers to find the model (default
// [DefaultReplayLimit]). A larger body is passed through without fallback.
// A limit that is not positive keeps the default.
func WithBodyLimit(n int64) Option {
	return func(c *options) {
		if n > 0 {
			c.bodyLimit = n
		}
	}
}

// maxSameModelWait is the longest wait an overloaded model's answer may
// ask of [Fallback] before the same request goes to that model again (a
// model that is its own alternate): retry's default cap on a server's
// wait. A longer one skips the model for its next alternate.
const maxSameModelWait = time.Minute

// notFoundPeek is how much of a 404 body Fallback reads to tell "no such
// model" from any other 404. Error bodies are small; a larger one is not the
// provider's model error.
const notFoundPeek = 4 << 10

// Fallback returns a middleware that serves a request from the next model
// of its chain when the asked model cannot.
//
// chains maps a model to its alternates, in order: with
// {"big": {"medium", "small"}}, a request for "big" that finds it
// overloaded goes to "medium", then to "small". A model moves on when it
// answers 503 or 529 (overloaded, once every decorator inside Fallback has
// given up), 404 with an error about the model (model_not_found, or an
// invalid_request_error or not_found_error that mentions the model), or when
// an inner decorator fails with an error matching [ErrModelUnavailable]
// (its breaker is open). Other answers and errors are returned as they are,
// and so is the last model's answer when the chain is exhausted or the
// request's context is done, or was made by [WithoutFallback]. A 404's
// body is read to tell, for at most [DrainWait] and never past the
// request's end, as [Drain] reads one: a 404 whose body stalls longer is
// returned as it is, its body closed after the bytes that came.
//
// The next attempt sends the same request with only the value of the body's
// top-level "model" rewritten; every other byte of the body is as the caller
// wrote it. An Idempotency-Key or X-Idempotency-Key header (a caller's, or
// an SDK's that sends one) is made the attempt's own: the request's key, a hyphen,
// and sixteen hex digits naming the model. A server that answers a key once
// would otherwise hand the next model's attempt the first model's failure,
// or refuse a key sent again with another body; the attempt's own retries,
// and the caller's retries of the whole request, keep its key. The returned response carries the [ModelHeader] header naming
// the model that served it, and [WithEvents] hears each switch. A returned
// response is never read, so streamed answers ("stream": true) pass through
// as they are; a discarded one is drained and closed.
//
// A request whose body is not a JSON object, has no top-level string
// "model", or names a model without a chain is passed through untouched: the
// same request object, when it has GetBody (as [http.NewRequest] sets for
// in-memory bodies) or no body. A body without GetBody is read to find the
// model (at most [WithBodyLimit]) and replayed to the inner transport.
//
// A model may be its own alternate ({"big": {"big", "small"}}: "big" is
// asked twice). The same request then goes to it again only once the wait
// its overloaded answer asked for (Retry-After, retry-after-ms) has
// passed, as a retry would; a wait over a minute, or past the request's
// deadline, skips it for the next alternate. Another model is asked at
// once.
//
// chains is copied; changing it later does not change the middleware. An
// empty alternate ("", a variable left unset) is left out of the copy. A
// nil next RoundTripper means [http.DefaultTransport].
func Fallback(chains map[string][]string, opts ...Option) Middleware {
	cfg := newOptions(opts)
	own := make(map[string][]string, len(chains))
	for m, alts := range chains {
		var chain []string
		for _, alt := range alts {
			// "" names no model (a variable left unset): it is not sent
			// to. A model may be its own alternate: sent once more, after
			// the wait it asked for.
			if alt != "" {
				chain = append(chain, alt)
			}
		}
		if len(chain) > 0 {
			own[m] = chain
		}
	}
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		return &fallback{next: next, chains: own, cfg: cfg}
	}
}

// noFallbackKey is the context key of [WithoutFallback].
type noFallbackKey struct{}

// WithoutFallback returns a context whose requests [Fallback] serves from
// the model they ask for only: the model's own answer (its 503, its 404,
// its breaker's error) is returned, as for a model without a chain. It is
// for a caller to whom another model's answer is worth nothing, though it
// would be paid for: a batch of embeddings, whose vectors must all be of
// one model to be compared (together.EmbedAll marks its requests so).
// The happy path does not look at the context: it costs nothing until a
// model would be left.
func WithoutFallback(ctx context.Context) context.Context {
	return context.WithValue(ctx, noFallbackKey{}, true)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (f *fallback) CloseIdleConnections() { CloseIdleConnections(f.next) }

type fallback struct {
	next   http.RoundTripper
	chains map[string][]string
	cfg    options
}

func (f *fallback) RoundTrip(req *http.Request) (*http.Response, error) {
	return f.RoundTripInfo(req, InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected).
func (f *fallback) RoundTripInfo(req *http.Request, info *Info) (*http.Response, error) {
	if len(f.chains) == 0 || req.Body == nil || req.Body == http.NoBody {
		return Forward(f.next, req, info)
	}
	// The happy path only needs the model (read by Inspect already, or
	// through GetBody without keeping the body); the body is read again
	// only to fall back. Without GetBody the body is buffered, once, and
	// send replays it.
	var asked string
	send := req
	if info.describes(req) {
		asked = info.Model
	} else {
		var err error
		if asked, send, err = RequestModel(req, f.cfg.bodyLimit); err != nil {
			return nil, err
		}
		info = nil
	}
	alts, ok := f.chains[asked]
	if !ok {
		return Forward(f.next, send, info)
	}

	ctx := req.Context()
	model := asked
	resp, err := Forward(f.next, send, info)
	var why FallbackReason
	for i := 0; ; i++ {
		if why == "" { // not judged yet: a new answer
			resp, why = f.verdict(resp, err)
		}
		if why == "" || i == len(alts) || ctx.Err() != nil || i == 0 && ctx.Value(noFallbackKey{}) != nil {
			break
		}
		to := alts[i]
		var end time.Time
		if to == model && why == FallbackOverloaded {
			// The same request to the same model: the wait that model
			// asked for holds, as for a retry. One it cannot be given
			// (over maxSameModelWait, or past the deadline) skips the
			// model for the next alternate.
			now := time.Now()
			sig := ParseSignals(resp.Header, now)
			wait := sig.ServerWait(resp.StatusCode)
			if wait > 0 {
				end = now.Add(wait)
				if dl, ok := ctx.Deadline(); wait > maxSameModelWait || ok && !end.Before(dl) {
					continue
				}
			}
		}
		nextReq, nextInfo := rewrite(send, info, to)
		if nextReq == nil { // the body cannot be read again: keep this answer
			break
		}
		Drain(resp)
		if ctx.Err() != nil {
			// The request ended while its answer was drained (a body that
			// stalled): the next model is not asked.
			_ = nextReq.Body.Close()
			return nil, context.Cause(ctx)
		}
		if f.cfg.events != nil {
			f.cfg.events.Emit(Event{Kind: EventFellBack, Endpoint: Endpoint(req), Model: asked,
				From: model, To: to, Reason: string(why)})
		}
		if !end.IsZero() {
			if err := SleepUntil(ctx, end); err != nil {
				_ = nextReq.Body.Close()
				return nil, err
			}
		}
		model = to
		resp, err = Forward(f.next, nextReq, nextInfo)
		why = ""
	}
	if resp != nil {
		if resp.Header == nil {
			resp.Header = make(http.Header)
		}
		resp.Header[ModelHeader] = []string{model}
	}
	return resp, err
}

// verdict says whether the answer of one model calls for the next, and
// returns the response to use in its place: a 404's body, of which a prefix
// was read, is put back together for the caller.
func (f *fallback) verdict(resp *http.Response, err error) (*http.Response, FallbackReason) {
	if err != nil {
		if errors.Is(err, ErrModelUnavailable) {
			return resp, FallbackUnavailable
		}
		return resp, ""
	}
	if resp == nil { // an inner transport that broke the contract: nothing to judge
		return resp, ""
	}
	switch resp.StatusCode {
	case http.StatusServiceUnavailable, StatusOverloaded:
		return resp, FallbackOverloaded
	case http.StatusNotFound:
		if resp.Body == nil {
			return resp, ""
		}
		// The body is read for DrainWait at most (PeekBody): a server
		// that stalls it would otherwise hold the request until its
		// deadline. A body closed then is not judged, and its answer is
		// kept as it is; whether it is kept or drained, the body is whole
		// again.
		peek, err := PeekBody(resp, notFoundPeek)
		if err == nil && isModelNotFound(peek) {
			return resp, FallbackNotFound
		}
		return resp, ""
	}
	return resp, ""
}

// isModelNotFound tells the provider's "no such model" from other 404s
// (a wrong path, a missing file or job): OpenAI and Together send the code
// model_not_found, Together also the type invalid_request_error, Anthropic
// a not_found_error whose message names the model, and Azure OpenAI the
// code DeploymentNotFound (a deployment is the model it serves; its v1 API
// names it as the body's model).
func isModelNotFound(body []byte) bool {
	if bytes.Contains(body, []byte("model_not_found")) || bytes.Contains(body, []byte("DeploymentNotFound")) {
		return true
	}
	return (bytes.Contains(body, []byte("invalid_request_error")) || bytes.Contains(body, []byte("not_found_error"))) &&
		bytes.Contains(body, []byte("model"))
}

// rewrite returns a shallow copy of req whose body is req's with the
// model replaced, read through req's GetBody each time it is sent, or nil
// when req's body cannot be had again or has not exactly one model. No
// copy of the body is made: the new body is the old one read through, the
// model's bytes swapped on the way. The copy has an [Info] of its own,
// returned with it; info is req's, or nil.
func rewrite(req *http.Request, info *Info, model string) (*http.Request, *Info) {
	if req.GetBody == nil {
		return nil, nil
	}
	s := getScanner(false)
	defer putScanner(s)
	if !scanGetBody(req, s) {
		return nil, nil
	}
	if _, ok := s.foundModel(); !ok {
		return nil, nil
	}
	sp := &splice{getBody: req.GetBody, start: s.modelStart, end: s.modelEnd, model: quoteModel(model)}
	body, err := sp.open()
	if err != nil {
		return nil, nil
	}
	endpoint := Endpoint(req)
	if info.describes(req) {
		endpoint = info.Endpoint
	}
	c, cinfo := withModel(req, endpoint, model)
	c.Header = fallbackHeader(req.Header, model)
	c.Body = body
	c.ContentLength = s.off - (sp.end - sp.start) + int64(len(sp.model))
	c.GetBody = sp.open
	return c, cinfo
}

// idempotencyKeys are the headers that ask a server to act on a request
// once, whatever number of times it is sent: net/http's, which the
// official SDKs send.
var idempotencyKeys = [...]string{"Idempotency-Key", "X-Idempotency-Key"}

// fallbackHeader returns the header of an attempt at model of a request
// whose header is h: h itself, unless it carries an idempotency key
// (idempotencyKeys). Then it is a copy in which each key is the
// request's, a hyphen, and the FNV-1a hash of model in hex: an attempt's
// own, the same each time the request falls back to that model.
func fallbackHeader(h http.Header, model string) http.Header {
	var c http.Header
	for _, k := range idempotencyKeys {
		v := h[k]
		if len(v) == 0 {
			continue
		}
		if c == nil {
			c = h.Clone()
		}
		c[k] = []string{v[0] + "-" + modelTag(model)}
	}
	if c == nil {
		return h
	}
	return c
}

// modelTag is the FNV-1a hash of model in sixteen hex digits.
func modelTag(model string) string {
	f := fnv.New64a()
	_, _ = io.WriteString(f, model)
	u := f.Sum64()
	var b [16]byte
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = "0123456789abcdef"[u&0xf]
		u >>= 4
	}
	return string(b[:])
}

// splice is a body with the bytes [start, end) of another replaced by
// model.
type splice struct {
	getBody    func() (io.ReadCloser, error)
	start, end int64
	model      []byte
}

func (sp *splice) open() (io.ReadCloser, error) {
	rc, err := sp.getBody()
	if err != nil {
		return nil, err
	}
	if rc == nil { // a broken GetBody: read, a splice around nothing would panic
		return nil, errNoBody
	}
	return &splicedBody{rc: rc, sp: sp}, nil
}

// splicedBody reads a splice: the original up to the model, the new model,
// then the original after the old model.
type splicedBody struct {
	rc  io.ReadCloser
	sp  *splice
	off int64 // bytes of the original read
	m   int   // bytes of the new model given out
}

func (b *splicedBody) Read(p []byte) (int, error) {
	if b.off == b.sp.start && b.m < len(b.sp.model) {
		n := copy(p, b.sp.model[b.m:])
		b.m += n
		return n, nil
	}
	if b.off == b.sp.start { // skip the old model
		if _, err := io.CopyN(io.Discard, b.rc, b.sp.end-b.sp.start); err != nil {
			return 0, err
		}
		b.off = b.sp.end
	}
	if b.off < b.sp.start && int64(len(p)) > b.sp.start-b.off {
		p = p[:b.sp.start-b.off]
	}
	n, err := b.rc.Read(p)
	b.off += int64(n)
	if err == io.EOF && b.off < b.sp.end {
		err = io.ErrUnexpectedEOF // the body changed under GetBody
	}
	return n, err
}

func (b *splicedBody) Close() error { return b.rc.Close() }
