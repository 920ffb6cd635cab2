package together

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// maxModels bounds the per-model limiters of one route. Past it, requests
// for further models share one limiter: a client that sends thousands of
// model names is limited, not given unbounded memory.
const maxModels = 256

// perModel limits each model apart, as Together does (its limits are per
// model and per key): a request's model, read from its body, picks its own
// bucket, made on first use at rate. With tokens, a token-per-minute
// limiter stands behind each request limiter, idle until the server shows
// a token limit. With a store (WithStore), each model's bucket is kept in
// it, shared with every process. Each limiter's events go to events with
// the model filled in.
func perModel(rate bucket.Rate, tokens bool, place shared, events transport.EventFunc) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return &modelLimits{rate: rate, tokens: tokens, place: place, events: events, next: next,
			byModel: map[string]http.RoundTripper{}}
	}
}

type modelLimits struct {
	rate   bucket.Rate
	tokens bool
	place  shared
	events transport.EventFunc
	next   http.RoundTripper

	mu      sync.Mutex
	byModel map[string]http.RoundTripper
	shared  http.RoundTripper
}

func (m *modelLimits) RoundTrip(req *http.Request) (*http.Response, error) {
	model, send, err := transport.RequestModel(req, 0)
	if err != nil {
		return nil, err
	}
	return m.limiter(model).RoundTrip(send)
}

func (m *modelLimits) limiter(model string) http.RoundTripper {
	m.mu.Lock()
	defer m.mu.Unlock()
	if rt, ok := m.byModel[model]; ok {
		return rt
	}
	if len(m.byModel) >= maxModels {
		if m.shared == nil {
			m.shared = m.build("")
		}
		return m.shared
	}
	rt := m.build(model)
	m.byModel[model] = rt
	return rt
}

// build makes model's limiter; model "" is the one shared by the models
// past maxModels.
func (m *modelLimits) build(model string) http.RoundTripper {
	events := modelEvents(m.events, model)
	next := m.next
	if m.tokens {
		next = newTokenGate(next, tokenEvents(events))
	}
	return bucket.Limit(m.place.newBucket(m.rate, model), bucket.WithEvents(events))(next)
}

// tokenGate is a token-per-minute limiter that stays out of the way until
// the server shows it limits tokens: x-tokenlimit-* headers, or a 429 of
// type dynamic_token_limited. Until then a request costs nothing to read;
// from then on each request's text tokens are estimated from its body and
// taken from a bucket that bucket.Limit adapts like any other.
type tokenGate struct {
	next    http.RoundTripper
	events  transport.EventFunc
	limited atomic.Pointer[http.RoundTripper] // nil until the gate opens
	once    sync.Once
}

func newTokenGate(next http.RoundTripper, events transport.EventFunc) *tokenGate {
	return &tokenGate{next: next, events: events}
}

func (g *tokenGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt := g.limited.Load(); rt != nil {
		return (*rt).RoundTrip(req)
	}
	resp, err := g.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	sig := transport.ParseSignals(resp.Header, time.Now())
	switch {
	case sig.Tokens.Limit > 0:
		// Together reports token limits per second.
		g.open(sig.Tokens.Limit, 0)
	case resp.StatusCode == http.StatusTooManyRequests && resp.Body != nil && resp.Body != http.NoBody:
		// Only the error body tells a token limit from a request limit.
		// The gate does not read it (a returned body is the caller's);
		// it watches the bytes as whoever reads it (the retry decorator
		// draining it, or the caller) does.
		resp.Body = &tokenSniffer{ReadCloser: resp.Body, gate: g, req: req, wait: sig.ServerWait(resp.StatusCode)}
	}
	return resp, nil
}

// open starts limiting tokens at perSecond, after a pause of wait. The
// limiter may raise the rate up to ten times that as the server allows
// (Together's limits grow with use) and lowers it on every 429.
func (g *tokenGate) open(perSecond float64, wait time.Duration) {
	g.once.Do(func() {
		b := bucket.New(bucket.PerSecond(perSecond))
		if wait > 0 {
			b.Pause(time.Now().Add(wait))
		}
		rt := bucket.Limit(b, bucket.WithUnits(bucket.TextTokens), bucket.WithCost(estimateTokens),
			bucket.WithCeiling(bucket.PerSecond(10*perSecond)), bucket.WithEvents(g.events))(g.next)
		g.limited.Store(&rt)
	})
}

// openFrom429 opens the gate after a dynamic_token_limited 429. With no
// figure from the server, the reset it gave is the measure: it is how long
// the server needs to refill what the refused request asked for (its
// bucket being near empty after the refusal), so the rate is about the
// request's tokens over the reset. Without a reset either, the request's
// tokens once a second is the start, and the limiter finds the rest.
func (g *tokenGate) openFrom429(req *http.Request, wait time.Duration) {
	est := float64(max(estimateTokens(req), 1))
	rate := est
	if wait > 0 {
		rate = est / wait.Seconds()
	}
	g.open(rate, wait)
}

// sniffLimit is how much of a 429's body tokenSniffer looks at: Together's
// error bodies are a few hundred bytes.
const sniffLimit = 4 << 10

// tokenSniffer passes a 429's body through unchanged and opens the gate if
// the bytes read through it name dynamic_token_limited.
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
		if bytes.Contains(s.seen, []byte("dynamic_token_limited")) {
			s.done = true
			s.gate.openFrom429(s.req, s.wait)
		} else if len(s.seen) >= sniffLimit {
			s.done = true
		}
	}
	return n, err
}

// estimateTokens estimates a request's tokens of text as Together counts
// them: the characters of the prompt (chat messages, a completion's
// prompt, embedding inputs) over four, plus max_tokens. It reads the body
// through GetBody; a body it cannot read costs 1.
func estimateTokens(req *http.Request) int {
	if req.GetBody == nil {
		return 1
	}
	rc, err := req.GetBody()
	if err != nil {
		return 1
	}
	defer rc.Close()
	var body struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Prompt    json.RawMessage `json:"prompt"`
		Input     json.RawMessage `json:"input"`
		MaxTokens int             `json:"max_tokens"`
	}
	if json.NewDecoder(io.LimitReader(rc, transport.DefaultReplayLimit)).Decode(&body) != nil {
		return 1
	}
	chars := textLen(body.Prompt) + textLen(body.Input)
	for _, m := range body.Messages {
		chars += textLen(m.Content)
	}
	// max_tokens is the caller's to set: bounded, so that a huge one costs
	// a lot rather than overflowing into a negative cost that takes nothing.
	return (chars+3)/4 + min(max(body.MaxTokens, 0), math.MaxInt32)
}

// textLen counts the characters of the strings in a JSON value: a string,
// an array of strings, or content parts ({"type":"text","text":...}).
func textLen(raw json.RawMessage) int {
	if len(raw) == 0 {
		return 0
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return len([]rune(s))
	}
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		n := 0
		for _, item := range list {
			n += textLen(item)
		}
		return n
	}
	var part struct {
		Text string `json:"text"`
	}
	if json.Unmarshal(raw, &part) == nil {
		return len([]rune(part.Text))
	}
	return 0
}

// MaxBatchRequests is the most requests Together accepts in one batch.
const MaxBatchRequests = 100

// BatchTooLargeError is returned, before anything is sent, for a batch of
// more than [MaxBatchRequests] requests.
type BatchTooLargeError struct {
	Requests int
}

// Error says how many requests the batch has and how many fit.
func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("together: a batch holds at most %d requests; this one has %d: split it", MaxBatchRequests, e.Requests)
}

// batchGuard refuses a batch over MaxBatchRequests before it is sent. It
// counts the requests of a JSON body's "requests" array, or the lines of
// its "input" (JSONL); any other body is passed on for the server to judge.
func batchGuard(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody {
			return next.RoundTrip(req)
		}
		var r transport.Replay
		if err := r.Reset(req, 0); err != nil {
			return nil, err
		}
		send, err := r.Request()
		if err != nil {
			return nil, err
		}
		if n := countBatch(send); n > MaxBatchRequests {
			if send.Body != nil {
				send.Body.Close()
			}
			return nil, &BatchTooLargeError{Requests: n}
		}
		// countBatch read a copy (GetBody): send's body is whole.
		return next.RoundTrip(send)
	})
}

func countBatch(req *http.Request) int {
	if req.GetBody == nil {
		return 0
	}
	rc, err := req.GetBody()
	if err != nil {
		return 0
	}
	defer rc.Close()
	var body struct {
		Requests []json.RawMessage `json:"requests"`
		Input    string            `json:"input"`
	}
	if json.NewDecoder(io.LimitReader(rc, transport.DefaultReplayLimit)).Decode(&body) != nil {
		return 0
	}
	if body.Requests != nil {
		return len(body.Requests)
	}
	n := 0
	for _, line := range bytes.Split([]byte(body.Input), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}
