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
	"time"
)

// Info is what [Inspect] read of a request, handed to every decorator
// under it, so that the body is read once for the whole stack:
// [RequestModel], [EstimateTokens], [Replay] and [Fallback] use it instead
// of reading the body again. A decorator that takes it beside the request
// ([InfoRoundTripper]) is handed it directly; any other finds it in the
// request's context ([InfoOf]).
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
	// ctx is the context that carries the Info in a request, made the
	// first time one must (attach): part of the Info's allocation.
	ctx      infoContext
	attached atomic.Bool
	// answers is how many answers were recorded (SetAnsweredAt), and
	// answeredAt when the latest came: written and read by the goroutine
	// that sends the request, in turn. (answers is beside attached: the
	// Info fits a smaller size class.)
	answers    uint32
	loc        locator // the writer the body is read with
	answeredAt time.Time

	// shared keeps what Signals read of the latest answer, once a
	// decorator asked for it (ShareSignals): sharing says so. (An Info
	// that ReadAndSend reuses keeps the one it had, emptied.)
	shared *sharedSignals
	// verdictOf is the latest answer Signals read, and verdict its
	// x-should-retry, for RetryVerdict.
	verdictOf *http.Response
	verdict   Verdict
	sharing   bool
}

// sharedSignals is what the answer of says, read at the instant at:
// its signals, and Anthropic's input and output token windows apart.
type sharedSignals struct {
	of    *http.Response
	at    time.Time
	sig   Signals
	split [2]Window
}

// ShareSignals makes i keep what [Info.Signals] reads of an answer, for
// a stack in which more than one decorator reads each answer: a limiter of
// tokens under a limiter of requests (bucket.Keyed's) asks for it. It
// costs one allocation per request, the first time it is asked (none for
// an Info that [ReadAndSend] reuses, once it was asked), and saves
// reading the answer's headers again (twenty or more through a CDN). A
// nil i does nothing.
func (i *Info) ShareSignals() {
	if i == nil || i.sharing {
		return
	}
	i.sharing = true
	if i.shared == nil {
		i.shared = new(sharedSignals)
	}
}

// Signals returns [ParseSignals] of resp's headers at now, for an answer
// to the request i describes. Once a decorator asked that they be shared
// ([Info.ShareSignals]), the headers of an answer are read once for all the
// decorators that ask at the same instant (the one the nearest to the wire
// recorded, [Info.SetAnsweredAt]): the same Response asked at the same
// instant gets what was read. So a decorator that changes an answer's
// headers hands up a new Response (a copy) for those above it, as a
// RoundTripper must not change a Response it did not make. A nil Info, or
// one not asked to share, reads resp's headers each time. Like
// [Info.SetAnsweredAt], it is called by the goroutine that sends the
// request.
func (i *Info) Signals(resp *http.Response, now time.Time) Signals {
	if i == nil {
		return ParseSignals(resp.Header, now)
	}
	var s Signals
	if !i.sharing {
		s = ParseSignals(resp.Header, now)
	} else {
		s = i.shared.read(resp, now)
	}
	i.verdictOf, i.verdict = resp, s.ShouldRetry
	return s
}

// RetryVerdict returns the server's x-should-retry of resp, as the
// function [RetryVerdict] reads it from resp's headers, which it does not
// read again when [Info.Signals] read resp's last: a decorator above a
// limiter (a retry's rule, on every answer) has it for nothing. Like
// [Info.Signals], it is called by the goroutine that sends the request; a
// nil Info reads the header.
func (i *Info) RetryVerdict(resp *http.Response) Verdict {
	switch {
	case resp == nil:
		return VerdictNone
	case i != nil && i.verdictOf == resp:
		return i.verdict
	}
	return RetryVerdict(resp.Header)
}

// read is what resp says at now, read once.
func (c *sharedSignals) read(resp *http.Response, now time.Time) Signals {
	c.update(resp, now)
	return c.sig
}

// update reads resp's headers at now, unless they were read.
func (c *sharedSignals) update(resp *http.Response, now time.Time) {
	if c.of != resp || !c.at.Equal(now) {
		c.sig = parseSignals(resp.Header, now, &c.split)
		c.of, c.at = resp, now
	}
}

// splitKeys are the headers of the windows [ParseSignals] folds into
// Signals.Tokens that a shared reading keeps apart too: Anthropic's input
// and output tokens.
var splitKeys = [2][3]string{
	{"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"},
	{"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"},
}

// Window returns [ParseWindow] of resp's headers limit, remaining and
// reset (canonical keys) at now: a limit a server states apart from the
// windows [Signals] folds together, such as Anthropic's input and output
// tokens (Anthropic-Ratelimit-Input-Tokens-Limit, -Remaining, -Reset).
// Once the Info shares signals ([Info.ShareSignals]), those two windows
// of Anthropic's are read with the rest of the answer's signals, once, as
// [Info.Signals] reads them; any other headers, and a nil Info or one not
// asked to share, are read each time.
func (i *Info) Window(resp *http.Response, now time.Time, limit, remaining, reset string) Window {
	if i != nil && i.sharing {
		for j := range splitKeys {
			if k := &splitKeys[j]; limit == k[0] && remaining == k[1] && reset == k[2] {
				i.shared.update(resp, now)
				return i.shared.split[j]
			}
		}
	}
	h := resp.Header
	return ParseWindow(h[limit], h[remaining], h[reset], now)
}

// SetAnsweredAt records t, when an answer to the request came, as read by
// the decorator nearest the wire that reads the clock then (a limiter,
// which times every answer): the decorators above it take it from
// [Info.AnsweredAt] rather than read the clock again, which costs as much
// as the rest of their bookkeeping. It is called by the goroutine that
// sends the request, as AnsweredAt is.
func (i *Info) SetAnsweredAt(t time.Time) {
	if i != nil {
		i.answeredAt = t
		i.answers++
	}
}

// AnsweredAt returns the instant recorded by the latest [Info.SetAnsweredAt]
// and how many answers were recorded so far (0 for a nil Info). A
// decorator notes the count before it sends an attempt, and uses the
// instant only if the count moved: then it is when this attempt's answer
// came, and not an earlier attempt's.
func (i *Info) AnsweredAt() (at time.Time, answers uint32) {
	if i == nil {
		return time.Time{}, 0
	}
	return i.answeredAt, i.answers
}

// infoKey is the context key of an Info.
type infoKey struct{}

// infoContext is the context of a request that carries an Info.
type infoContext struct {
	context.Context
	info *Info
}

func (c *infoContext) Value(key any) any {
	if _, ok := key.(infoKey); ok {
		return c.info
	}
	return c.Context.Value(key)
}

// attach returns a shallow copy of req whose context carries i, for a
// decorator that looks for it there ([InfoOf]). The first such context is
// part of the Info's allocation.
func (i *Info) attach(req *http.Request) *http.Request {
	ctx := req.Context()
	if c, ok := ctx.(*infoContext); ok && c.info == i {
		return req // carried already
	}
	if i.attached.CompareAndSwap(false, true) {
		i.ctx.Context, i.ctx.info = ctx, i
		return req.WithContext(&i.ctx)
	}
	return req.WithContext(&infoContext{Context: ctx, info: i})
}

// InfoOf returns what [Inspect] read of req, or nil when req was not
// inspected, or its Info is handed on beside it rather than in its
// context ([Forward]). An Info describes the request it was made for and
// the copies of it that decorators send on (a shallow copy, whose URL is
// the same): a request made anew with the same context, whose URL
// differs, is not described by it, and is read on its own.
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

// describes reports whether i describes req: it was made for req or a
// shallow copy of it.
func (i *Info) describes(req *http.Request) bool {
	return i != nil && req != nil && i.url == req.URL
}

// inspectedOnce reports whether req's body is the one [Inspect] found too
// large to buffer: it is sent once, and nobody reads it to buffer it again.
func inspectedOnce(req *http.Request, info *Info) bool {
	return info != nil && info.once != nil && info.once == req.Body
}

// An InfoRoundTripper is a RoundTripper that can be handed the [Info] of a
// request beside it, rather than find it in the request's context: the
// decorators of package steady are, and a stack of them passes each
// request down with no copy of it made to carry its Info. [Forward] hands
// a request on to the next RoundTripper either way.
type InfoRoundTripper interface {
	http.RoundTripper
	// RoundTripInfo is RoundTrip for req, described by info: what Inspect
	// read of it, or nil when it was not read. It keeps the RoundTripper
	// contract, and sends req on with [Forward].
	RoundTripInfo(req *http.Request, info *Info) (*http.Response, error)
}

// Forward sends req through next, with info, the [Info] of req (nil when
// it has none): beside it when next is an [InfoRoundTripper], otherwise in
// the context of a shallow copy of req, where [InfoOf] finds it, unless
// req carries it there already. A decorator that reads or is handed a
// request's Info sends the request on with Forward.
//
// An [*http.Transport] is handed req as it is: it reads no Info. So is a
// RoundTripper marked with [Base].
func Forward(next http.RoundTripper, req *http.Request, info *Info) (*http.Response, error) {
	switch n := next.(type) {
	case InfoRoundTripper:
		return n.RoundTripInfo(req, info)
	case *http.Transport:
		return n.RoundTrip(req)
	}
	if !info.describes(req) {
		return next.RoundTrip(req)
	}
	return next.RoundTrip(info.attach(req))
}

// Base returns rt marked as the base of a stack of decorators, the
// transport that puts requests on the wire: [Forward] hands it each
// request as it is, its [Info] not carried in a copy of it, as for an
// [*http.Transport]. A preset marks its base transport so. Nil means
// [http.DefaultTransport].
func Base(rt http.RoundTripper) http.RoundTripper {
	switch rt.(type) {
	case nil:
		return http.DefaultTransport
	case *base, *http.Transport:
		return rt
	}
	return &base{rt}
}

// base is a RoundTripper marked by Base.
type base struct{ rt http.RoundTripper }

func (b *base) RoundTrip(req *http.Request) (*http.Response, error) { return b.rt.RoundTrip(req) }

// RoundTripInfo sends req on as it is: the base reads no Info.
func (b *base) RoundTripInfo(req *http.Request, _ *Info) (*http.Response, error) {
	return b.rt.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the transport it
// marks.
func (b *base) CloseIdleConnections() { CloseIdleConnections(b.rt) }

// Inspect returns a middleware that reads each request once for every
// decorator under it: a preset puts it outermost. It finds the endpoint
// and the body's model (see [RequestModel]) and hands them on with
// [Forward]: beside the request to the decorators of steady, which use
// them instead of reading the body again, and in the context of a copy of
// the request ([InfoOf]) to any other.
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
	send, info, err := Read(req, in.limit)
	if err != nil {
		return nil, err
	}
	return Forward(in.next, send, info)
}

// RoundTripInfo is RoundTrip for a request read already: it is not read
// again.
func (in *inspector) RoundTripInfo(req *http.Request, info *Info) (*http.Response, error) {
	if info == nil {
		return in.RoundTrip(req)
	}
	return Forward(in.next, req, info)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (in *inspector) CloseIdleConnections() { CloseIdleConnections(in.next) }

// Read is what [Inspect] does to one request, for a decorator that is
// itself outermost (a preset's transport) and hands the Info on beside
// the request ([Forward]): it returns the request to send on, and its
// [Info]. The request is req itself unless its body had to be buffered
// (a body without GetBody): then it is a shallow copy of req whose body
// replays the bytes read, with GetBody set. limit is the most of a body
// without GetBody that is buffered (0 means [DefaultReplayLimit]).
//
// The error is a failure reading the body, which is then closed; nothing
// must be sent.
func Read(req *http.Request, limit int64) (*http.Request, *Info, error) {
	info := new(Info)
	send, err := info.read(req, limit, false)
	if err != nil {
		return nil, nil, err
	}
	return send, info, nil
}

// ReadAndSend is [Read] for a decorator that is done with the [Info] once
// the request is sent: it reads req as Read does, calls send with the
// request to send on and its Info, and returns what send returns. The
// Info is valid only until send returns; it is then reused for another
// request, which saves its allocation. Nothing may keep it (or a pointer
// into it) beyond that: the decorators of steady keep nothing of an Info
// once they return. An Info that [Forward] attached to a request's
// context, for a RoundTripper that is not an [InfoRoundTripper] (which
// may keep the request), is not reused.
//
// A failure reading the body is returned as Read returns it, with send
// not called.
func ReadAndSend(req *http.Request, limit int64, send func(*http.Request, *Info) (*http.Response, error)) (*http.Response, error) {
	return readAndSend(req, limit, false, send)
}

// readAndSend is ReadAndSend for req, a copy of the caller's request
// when owned (see Info.read).
func readAndSend(req *http.Request, limit int64, owned bool, send func(*http.Request, *Info) (*http.Response, error)) (*http.Response, error) {
	info := infoPool.Get().(*Info)
	r, err := info.read(req, limit, owned)
	if err == nil {
		var resp *http.Response
		resp, err = send(r, info)
		info.recycle()
		return resp, err
	}
	info.recycle()
	return nil, err
}

// infoPool holds the Infos ReadAndSend is done with.
var infoPool = sync.Pool{New: func() any { return new(Info) }}

// recycle puts i, which nothing refers to any more unless a context
// carries it, back in infoPool, emptied.
func (i *Info) recycle() {
	if i.attached.Load() {
		return // a request's context carries it: it is the request's now
	}
	i.empty()
	infoPool.Put(i)
}

// empty makes i a new Info's equal, but for the room its shared reading
// had (ShareSignals), which it keeps for the next request that shares:
// emptied, and unused until asked for.
func (i *Info) empty() {
	shared := i.shared
	*i = Info{}
	if shared != nil {
		*shared = sharedSignals{}
		i.shared = shared
	}
}

// ReadCopy is [Read] for a decorator that sends a shallow copy of req
// rather than req itself: it returns the copy and its [Info], made in one
// allocation. prepare, when not nil, is called on the copy before it is
// read, to set what the copy's URL and headers must be (moving a request
// to an API root, adding a key): it may replace the copy's URL and Header,
// never change what they point to, which is the caller's. limit is as
// [Read]'s.
//
// The error is a failure reading the body, which is then closed; nothing
// must be sent.
func ReadCopy(req *http.Request, limit int64, prepare func(*http.Request)) (*http.Request, *Info, error) {
	c := &infoRequest{req: *req}
	if prepare != nil {
		prepare(&c.req)
	}
	send, err := c.info.read(&c.req, limit, true)
	if err != nil {
		return nil, nil, err
	}
	return send, &c.info, nil
}

// ReadCopyAndSend is [ReadCopy] for a decorator that is done with the
// [Info] once the request is sent, as [ReadAndSend] is [Read]'s: it makes
// a shallow copy of req, calls prepare on it (when not nil) as ReadCopy
// does, reads the copy, calls send with the request to send on and its
// Info, and returns what send returns. The Info is valid only until send
// returns, and is then reused for another request; the copy is not, for
// the answer may name it as its Request.
//
// A failure reading the body is returned as ReadCopy returns it, with
// send not called.
func ReadCopyAndSend(req *http.Request, limit int64, prepare func(*http.Request), send func(*http.Request, *Info) (*http.Response, error)) (*http.Response, error) {
	c := new(http.Request)
	*c = *req
	if prepare != nil {
		prepare(c)
	}
	return readAndSend(c, limit, true, send)
}

// infoRequest is a shallow copy of a request and the Info that describes
// it, allocated together.
type infoRequest struct {
	info Info
	req  http.Request
}

// InspectRequest is what [Inspect] does to one request, for a decorator
// that is itself outermost and passes the [Info] on in the request's
// context: it returns the request to send on, a shallow copy of req that
// carries its Info ([InfoOf]). prepare, when not nil, is called on that
// copy before it is read, to set what the copy's URL and headers must be
// (moving a request to an API root, adding a key): it may replace the
// copy's URL and Header, never change what they point to, which is the
// caller's. limit is the most of a body without GetBody that is buffered
// (0 means [DefaultReplayLimit]).
//
// The error is a failure reading the body, which is then closed; nothing
// must be sent. [Read] passes the Info on without the copy.
func InspectRequest(req *http.Request, limit int64, prepare func(*http.Request)) (*http.Request, error) {
	info := new(Info)
	send := info.attach(req)
	if prepare != nil {
		prepare(send)
	}
	return info.read(send, limit, true)
}

// read fills i in from req, and returns the request to send on: req, or
// (for a body that must be buffered) a shallow copy of it, unless owned:
// req is then a copy of the caller's already, and its body is replaced in
// place.
func (i *Info) read(req *http.Request, limit int64, owned bool) (*http.Request, error) {
	if limit <= 0 {
		limit = DefaultReplayLimit
	}
	send := req
	i.url = send.URL
	if send.URL != nil {
		i.Endpoint = endpointOf(send.URL.Path)
	}
	switch {
	case send.Body == nil || send.Body == http.NoBody:
	case send.GetBody != nil:
		i.Model = i.loc.modelOf(send, limit)
	default:
		if send.ContentLength > limit {
			i.once = send.Body
			break
		}
		buf, tooLarge, err := readRequestBody(send, limit)
		if err != nil {
			_ = send.Body.Close()
			return nil, err
		}
		if !owned {
			c := *req
			send = &c
		}
		if tooLarge {
			once := newOnceBody(buf, send.Body)
			send.Body, i.once = once, once
			break
		}
		_ = send.Body.Close()
		send.Body, send.GetBody, send.ContentLength = buf.reader(), buf.getBody, buf.size
		i.Model = modelOfBuffer(buf)
	}
	return send, nil
}

// withModel returns a shallow copy of req, and its Info, which describes
// it with model: the request Fallback made by rewriting the model of req.
// The copy has a URL of its own (the same), so that an Info of req in its
// context does not describe it.
func withModel(req *http.Request, endpoint, model string) (*http.Request, *Info) {
	c := &modelRequest{infoRequest: infoRequest{req: *req}}
	send := &c.req
	if req.URL != nil {
		c.url = *req.URL
		send.URL = &c.url
	}
	c.info.Endpoint, c.info.Model, c.info.url = endpoint, model, send.URL
	return send, &c.info
}

// modelRequest is what withModel makes, allocated together: the copy, its
// Info and its URL.
type modelRequest struct {
	infoRequest
	url url.URL
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
// prompt, the instructions of OpenAI's Responses API and the outputs of
// tools its input hands back, and the tool calls a conversation hands back:
// the "arguments" of a chat message's tool_calls or of a Responses API
// function_call (a string of JSON, counted as text), the "input" of an
// Anthropic tool_use block (an object: each of its strings, keys too, its
// numbers and punctuation not) or of a Responses API custom_tool_call;
// images, roles and tool definitions do not count. output is the
// largest of max_tokens, max_completion_tokens and max_output_tokens.
//
// The body is read through GetBody (once per request under [Inspect],
// which keeps the estimate), scanned as it streams and not kept. A request
// without GetBody, or whose body is not a JSON object or cannot be read,
// is (1, 0); the body is checked as [FindModel] checks it (inside nested
// values only brackets and strings), so a body a server will refuse may
// still be counted. Each estimate is at most math.MaxInt32.
func RequestTokens(req *http.Request) (prompt, output int) {
	return (*Info)(nil).Tokens(req)
}

// Tokens is [RequestTokens] for req, which i describes: the estimate is
// made once for the Info, and kept. A nil i is the Info req carries
// ([InfoOf]), if any; an Info that does not describe req is not used.
func (i *Info) Tokens(req *http.Request) (prompt, output int) {
	info := i
	if info == nil {
		info = InfoOf(req)
	} else if !info.describes(req) {
		info = nil
	}
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
// whether all of it was read (or the model located at once). Only a body
// of the length s.whole declares is located: for a scan that must see
// every byte (the model's place, the prompt's characters), s.whole is 0
// and a reader that tells its length does not set it.
func scanGetBody(req *http.Request, s *scanner) bool {
	err := writeGetBody(req, s, nil)
	return err == nil || s.located
}

// errNoBody is writeGetBody's error when GetBody gives no body.
var errNoBody = errors.New("steady: GetBody gave no body")

// writeGetBody writes a fresh body from req's GetBody to w. An in-memory
// reader writes itself at once, in one piece; *whole, when whole is not
// nil and *whole not positive, is then set to its length.
func writeGetBody(req *http.Request, w io.Writer, whole *int64) error {
	rc, err := req.GetBody()
	if err != nil || rc == nil {
		return errNoBody
	}
	defer rc.Close()
	if wt, ok := rc.(io.WriterTo); ok {
		if l, ok := rc.(interface{ Len() int }); ok && whole != nil && *whole <= 0 {
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
// Info, which is allocated anyway: reading the body
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
	if err := writeGetBody(req, s, &s.whole); err != nil && !s.located {
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
