package bucket

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// TokenCount says which of a request's tokens count against a
// [TokenLimit].
type TokenCount int8

const (
	// AllTokens: the prompt's and the output's (OpenAI, Together).
	AllTokens TokenCount = iota
	// InputTokens: the prompt's alone (Anthropic's input token limit).
	InputTokens
	// OutputTokens: the output's alone (Anthropic's output token limit).
	OutputTokens
)

// TokenLimit is one of a server's limits on tokens of text, which [Keyed]
// keeps a limiter for beside each key's request limiter.
//
// A request is charged its estimate before it is sent
// ([transport.RequestTokens]: the prompt's characters over four, and of
// the most it may generate, the share its key's answers have used, with a
// margin: all of it until an answer reports its usage). The usage each
// answer reports (read as the caller reads the answer, in its body or the
// last events of its stream) moves that share, and corrects the request's
// charge: the difference is taken or given back, so a chat request that
// allows 1,000 tokens and uses 50 costs 50, not 1,000. An answer that
// states what remains of the limit and when it resets
// (x-ratelimit-remaining-tokens and -reset-tokens, and the like) is not
// corrected: the limiter takes the server's own count, which holds what
// the request used already. One that states what remains alone (Azure
// OpenAI's), which the limiter cannot take, is corrected.
type TokenLimit struct {
	// Name names the limit in events (their Reason): "tokens", "input
	// tokens", "output tokens".
	Name string

	// Counts says which tokens of a request count against the limit.
	Counts TokenCount

	// Header is the prefix of the server's headers that state this limit,
	// before "Limit", "Remaining" and "Reset" (Anthropic's
	// "Anthropic-Ratelimit-Input-Tokens-"). "" reads the token headers of
	// every dialect [transport.ParseSignals] knows, the tightest of them.
	Header string

	// Rate is where the limiter starts. Unknown (the zero Rate), it stays
	// idle, costing nothing, until the server shows it limits tokens: a
	// header stating the limit, or a 429 whose body says tokens were
	// refused (Together's dynamic_token_limited, OpenAI's "tokens").
	Rate Rate

	// Window is the period the server's stated limit counts over: a
	// minute (the default) for OpenAI and Anthropic, a second for
	// Together. A window the server states with the limit (the IETF
	// RateLimit-Policy's w, read when Header is "") is taken instead. The
	// limiter holds at most a window of its rate, as the server's bucket
	// does.
	Window time.Duration

	// Ceiling is the highest the limiter raises its rate to, as a factor
	// of the limit it opened at (default 1; Together's limits grow with
	// use, and its preset allows 10). A factor under 1, or one that is not
	// a number, is 1: the limiter never holds itself below the limit the
	// server states. A limiter that a 429's body opened, with no limit
	// stated, has no ceiling: it starts from a guess (the refused
	// request's tokens over the server's wait) and rises from it as an
	// unknown rate does, until a 429 shows the limit.
	Ceiling float64
}

func (t *TokenLimit) window() time.Duration {
	if t.Window > 0 {
		return t.Window
	}
	return time.Minute
}

func (t *TokenLimit) ceiling() float64 {
	if t.Ceiling >= 1 {
		return t.Ceiling
	}
	return 1
}

func (t *TokenLimit) name() string {
	if t.Name != "" {
		return t.Name
	}
	return "tokens"
}

// estimate is the request's share of the limit, its output taken as
// share of what it allows.
func (t *TokenLimit) estimate(req *http.Request, info *transport.Info, share float64) int {
	prompt, output := info.Tokens(req)
	out := int(math.Ceil(float64(output) * share))
	switch t.Counts {
	case InputTokens:
		return prompt
	case OutputTokens:
		return out
	}
	return prompt + out
}

// used is what the answer's usage says the request took of the limit.
func (t *TokenLimit) used(u transport.Usage) int64 {
	switch t.Counts {
	case InputTokens:
		return u.Input
	case OutputTokens:
		return u.Output
	}
	return u.Total()
}

// limit is the limit a response's headers state (0 when none) and what
// they say remains of it (-1 when they do not). A limit under one token is
// none, as [Limit] reads it: obeyed, it would hold every request of the
// key for hours. sig is what
// [transport.ParseSignals] read of h, in every dialect it knows (the
// IETF fields' windows in tokens among them): when its token window
// states no limit, no header does, and h is not read.
func (g *tokenGate) limit(h http.Header, sig *transport.Signals) (limit, remaining float64) {
	if g.lim.Header == "" {
		if !(sig.Tokens.Limit >= 1) {
			return 0, -1
		}
		return sig.Tokens.Limit, sig.Tokens.Remaining
	}
	if sig.Tokens.Limit < 0 {
		return 0, -1
	}
	v := h[g.limitKey]
	if len(v) == 0 {
		return 0, -1
	}
	w := transport.ParseWindow(v, h[g.remainingKey], nil, time.Now())
	if !(w.Limit >= 1) {
		return 0, -1
	}
	return w.Limit, w.Remaining
}

// counted reports whether the answer resp, whose signals are sig and which
// came at now, states a count of the limit that its limiter takes (see
// control.observe): what remains of it, and when it resets, in every
// dialect the limiter reads its count from (Anthropic's input and output
// token limits, Together's dynamic one, whose reset is its request
// window's, the IETF fields), or in the limit's own headers (info reads
// them, as the limiter does). A count without its reset (Azure OpenAI's
// x-ratelimit-remaining-tokens comes alone), of a limit under one token,
// or while the limiter distrusts the server's counts (o's, after a 429
// they did not foresee) is not taken.
func (g *tokenGate) counted(o *openGate, info *transport.Info, resp *http.Response, sig *transport.Signals, now time.Time) bool {
	w := sig.Tokens
	if g.lim.Header != "" {
		w = info.Window(resp, now, g.limitKey, g.remainingKey, g.resetKey)
	} else if w.Reset < 0 {
		w.Reset = sig.Requests.Reset
	}
	if w.Remaining < 0 || w.Reset <= 0 || w.Limit >= 0 && w.Limit < 1 {
		return false
	}
	return o.lim.c.readsCounts(now)
}

// tokenGate is one key's limiter of one TokenLimit: idle (a pass-through
// that watches the answers) until the limit is known, then a Limit on a
// bucket of tokens.
type tokenGate struct {
	lim  *TokenLimit
	next http.RoundTripper
	// nextInfo is next when it is a transport.InfoRoundTripper, handed
	// each request directly, as limited's is.
	nextInfo transport.InfoRoundTripper
	events   transport.EventFunc
	pause    []LimitOption
	open     atomic.Pointer[openGate]
	once     sync.Once
	// used is the share of max_tokens the answers of this key have used,
	// an average that the usage of each answer moves (float64 bits); 1
	// until an answer reports its usage (taught).
	used   atomic.Uint64
	taught atomic.Bool
	// The names of the headers of a limit of its own (TokenLimit.Header).
	limitKey, remainingKey, resetKey string
}

// The share of max_tokens a request is charged: what its key's answers
// used, a moving average over about usedSpan answers, times usedMargin,
// so that the next answer using more than the last ones is still covered.
const (
	usedSpan   = 8
	usedMargin = 1.5
)

// share is the share of a request's max_tokens it is charged.
func (g *tokenGate) share() float64 {
	return min(math.Float64frombits(g.used.Load())*usedMargin, 1)
}

// learn moves the average share of max_tokens used by one answer's,
// whose request allowed that many output tokens.
func (g *tokenGate) learn(allowed int, u transport.Usage) {
	if g.lim.Counts == InputTokens {
		return
	}
	if allowed <= 0 {
		return
	}
	r := min(float64(u.Output)/float64(allowed), 1)
	for {
		old := g.used.Load()
		avg := r // the first answer's share is the first measure
		if g.taught.Load() {
			avg = math.Float64frombits(old)
			avg += (r - avg) / usedSpan
		}
		if g.used.CompareAndSwap(old, math.Float64bits(avg)) {
			g.taught.Store(true)
			return
		}
	}
}

type openGate struct {
	b   *Bucket
	lim *limited // the limiter, of b, around the gate's next
}

// most is the most a request is charged, or corrected to: a minute of the
// limit at its rate (or the burst, if more). A request the server would
// count as more than that (a mistaken or garbage max_tokens, an answer
// whose usage is absurd) is refused by it, or served, within a minute of
// the limit; charged its count, it would hold every request of the key
// behind it for as long as the count takes to refill, hours or years.
func (o *openGate) most() int64 {
	return int64(min(max(o.b.Burst(), o.b.Rate().PerSecond()*time.Minute.Seconds(), 1), math.MaxInt32))
}

// charge is what a request estimated at n tokens is charged: n, at most
// most.
func (o *openGate) charge(n int) int {
	if float64(n) <= o.b.Burst() {
		return n
	}
	return int(min(int64(n), o.most()))
}

func newTokenGate(lim *TokenLimit, next http.RoundTripper, events transport.EventFunc, pause []LimitOption) *tokenGate {
	g := &tokenGate{lim: lim, next: next, pause: pause, events: tokenEvents(events, lim.name()),
		limitKey: http.CanonicalHeaderKey(lim.Header + "Limit"), remainingKey: http.CanonicalHeaderKey(lim.Header + "Remaining"),
		resetKey: http.CanonicalHeaderKey(lim.Header + "Reset")}
	g.nextInfo, _ = next.(transport.InfoRoundTripper)
	g.used.Store(math.Float64bits(1))
	if lim.Rate.Known() {
		g.start(lim.Rate, 0)
	}
	return g
}

// RoundTrip sends req through the limiter once the gate is open. While it
// is idle, req passes through, and the request limiter around the gate
// hands it the answer's signals (answer).
func (g *tokenGate) RoundTrip(req *http.Request) (*http.Response, error) {
	return g.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected), which is handed on with it.
func (g *tokenGate) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	if o := g.open.Load(); o != nil {
		return g.limited(o, req, info)
	}
	var resp *http.Response
	var err error
	if g.nextInfo != nil {
		resp, err = g.nextInfo.RoundTripInfo(req, info)
	} else {
		resp, err = transport.Forward(g.next, req, info)
	}
	if err != nil {
		if resp != nil { // a response and an error: keep the contract
			transport.Drain(resp)
		}
		return nil, err
	}
	return resp, nil
}

// answer opens an idle gate when the answer resp to req, whose signals are
// sig, shows the limit.
func (g *tokenGate) answer(req *http.Request, resp *http.Response, sig *transport.Signals) {
	if g.open.Load() != nil {
		return
	}
	switch limit, remaining := g.limit(resp.Header, sig); {
	case limit > 0:
		wait := time.Duration(0)
		if resp.StatusCode == http.StatusTooManyRequests {
			wait = sig.ServerWait(resp.StatusCode)
		}
		// Over the window the server states with the limit (the IETF
		// policy's w), or the one configured.
		window := g.lim.window()
		if p := sig.Tokens.Period; p > 0 && g.lim.Header == "" {
			window = p
		}
		g.startAt(Rate{Tokens: limit, Per: window}, window, wait, remaining, false)
	case resp.StatusCode == http.StatusTooManyRequests && resp.Body != nil && resp.Body != http.NoBody:
		// Only the error body may tell a token limit from a request limit.
		// The gate does not read it (a returned body is the caller's); it
		// watches the bytes as whoever reads it (the retry decorator
		// draining it, or the caller) does.
		resp.Body = &tokenSniffer{ReadCloser: resp.Body, gate: g, req: req, wait: sig.ServerWait(resp.StatusCode)}
	}
}

// limited sends req through the open limiter and corrects its charge by
// the usage its answer reports.
func (g *tokenGate) limited(o *openGate, req *http.Request, info *transport.Info) (*http.Response, error) {
	// The limiter is handed the charge: its answer corrects that charge,
	// whatever the share is by then.
	charged := o.charge(g.lim.estimate(req, info, g.share()))
	// This limiter and the request limiter around the gate both read the
	// answer: its headers are read once for both.
	info.ShareSignals()
	resp, err := o.lim.roundTripCost(req, info, charged)
	if err != nil {
		return nil, err
	}
	// A 101's body is the upgraded connection (a WebSocket), which the
	// caller writes to as well: a body that only reads would hide it, and
	// no usage comes through it.
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, nil
	}
	// The usage the answer reports teaches what share of max_tokens the
	// key's requests use, which the next ones are charged. It also
	// corrects this request's charge, unless the answer states a count
	// of the limit the limiter takes: that count holds what the request
	// used already, and a correction on top would count it twice. (A
	// count the limiter does not take, one without its reset, corrects
	// nothing: the charge is corrected.)
	now, _ := info.AnsweredAt()
	sig := info.Signals(resp, now) // read once, for the limiters already
	correct := !g.counted(o, info, resp, &sig, now)
	b := o.b
	// The body is read after the round trip, when the Info may describe
	// another request (a preset reuses it): what the usage is read
	// against is taken now.
	_, allowed := info.Tokens(req)
	resp.Body = transport.WatchResponseUsage(resp, func(u transport.Usage, ok bool) {
		if !ok {
			return
		}
		g.learn(allowed, u)
		if correct {
			b.correct(float64(min(g.lim.used(u), o.most()) - int64(max(charged, 0))))
		}
	})
	return resp, nil
}

// start opens the gate at rate, after a pause of wait. The limiter may
// rise to the limit's ceiling as the server allows, and lowers its rate on
// every 429.
func (g *tokenGate) start(rate Rate, wait time.Duration) {
	g.startAt(rate, g.lim.window(), wait, -1, false)
}

// startAt is start with the window the limit counts over (the bucket
// holds a window of the rate), and what the server said remains of the
// limit (-1: nothing), which the limiter starts with. guess: rate is no
// limit the server stated but a guess at it (see startFrom429), which
// bounds nothing: the limiter slow-starts from it, as from an unknown
// rate, until the server's next 429 shows the limit.
func (g *tokenGate) startAt(rate Rate, window, wait time.Duration, remaining float64, guess bool) {
	g.once.Do(func() {
		// The server's bucket holds a window of its limit (a minute of
		// OpenAI's and Anthropic's), and so does this one: a request that
		// may generate 1,000 tokens is charged them up front and given
		// back what it did not use, which a bucket of one second of a
		// per-minute limit could neither take at once nor keep.
		burst := max(rate.PerSecond()*window.Seconds(), 1)
		opts := []Option{WithBurst(burst)}
		if remaining >= 0 {
			opts = append(opts, WithInitial(remaining))
		}
		b := New(rate, opts...)
		b.unknown = guess // slow-started from the guess, with no ceiling
		if wait > 0 {
			b.Pause(time.Now().Add(min(wait, g.maxPause())))
		}
		lim := g.lim
		lopts := []LimitOption{WithUnits(TextTokens), WithEvents(g.events)}
		if !guess {
			lopts = append(lopts, WithCeiling(Rate{Tokens: rate.Tokens * lim.ceiling(), Per: rate.Per}))
		}
		lopts = append(lopts, g.pause...)
		if lim.Header != "" {
			lopts = append(lopts, func(c *limitConfig) { c.own = [3]string{g.limitKey, g.remainingKey, g.resetKey} })
		}
		g.open.Store(&openGate{b: b, lim: Limit(b, lopts...)(g.next).(*limited)})
	})
}

// maxPause is the longest one 429 pauses the limiter: the request
// limiter's [WithMaxPause], or [DefaultMaxPause].
func (g *tokenGate) maxPause() time.Duration {
	c := limitConfig{maxPause: DefaultMaxPause}
	for _, o := range g.pause {
		o(&c)
	}
	return c.maxPause
}

// startFrom429 opens the gate after a 429 whose body said tokens were
// refused. With no figure from the server, the reset it gave is the
// measure: it is how long the server needs to refill what the refused
// request asked for (its bucket near empty after the refusal), so the rate
// is about the request's tokens over the reset. Without a reset either,
// the request's tokens once a second is the start, and the limiter finds
// the rest: the rate is a guess, which it slow-starts from (an early
// refusal, or a long reset, guesses low, and a ceiling there would hold
// the key to it for good). A reset longer than the longest pause measures
// nothing: the server is asked again then, so the rate is the request's
// tokens over that pause, not over a day of a garbage Retry-After.
func (g *tokenGate) startFrom429(req *http.Request, wait time.Duration) {
	c := g.lim.estimate(req, nil, g.share())
	if o := g.open.Load(); o != nil {
		c = o.charge(c)
	}
	est := float64(max(c, 1))
	rate := est
	wait = min(wait, g.maxPause())
	if wait > 0 {
		rate = est / wait.Seconds()
	}
	g.startAt(PerSecond(rate), g.lim.window(), wait, -1, true)
}

// tokenEvents hands the events of a token limiter to fn with their Reason
// the limit's name, but for its pauses: every answer it sees goes through
// the request limiter outside it too, which reports each 429 once
// already.
func tokenEvents(fn transport.EventFunc, name string) transport.EventFunc {
	if fn == nil {
		return nil
	}
	return func(e transport.Event) {
		if e.Kind != transport.EventPaused {
			e.Reason = name
			fn(e)
		}
	}
}

// sniffLimit is how much of a 429's body tokenSniffer looks at: error
// bodies are a few hundred bytes.
const sniffLimit = 4 << 10

// tokenSniffer passes a 429's body through unchanged and opens the gate if
// the bytes read through it say tokens were refused.
type tokenSniffer struct {
	io.ReadCloser
	gate *tokenGate
	req  *http.Request
	wait time.Duration
	seen []byte
	done bool
}

func (s *tokenSniffer) Read(p []byte) (int, error) {
	n, err := s.ReadCloser.Read(p)
	if !s.done && n > 0 {
		s.seen = append(s.seen, p[:min(n, sniffLimit-len(s.seen))]...)
		if refusedTokens(s.seen) {
			s.done = true
			s.gate.startFrom429(s.req, s.wait)
		} else if len(s.seen) >= sniffLimit {
			s.done = true
		}
	}
	return n, err
}

// refusedTokens reports whether a 429's body says a token limit refused
// the request: Together's type dynamic_token_limited, OpenAI's type
// "tokens" (its message: "... on tokens per min (TPM) ...").
func refusedTokens(body []byte) bool {
	return bytes.Contains(body, []byte("dynamic_token_limited")) ||
		bytes.Contains(body, []byte(`"type":"tokens"`)) || bytes.Contains(body, []byte(`"type": "tokens"`)) ||
		bytes.Contains(body, []byte("tokens per min"))
}
