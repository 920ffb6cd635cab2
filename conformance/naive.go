package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/steadyapi/steady/transport"
)

// The figures of the guide the naive port follows (GUIDE-together-rate-limits.txt).
const (
	NaiveChatRPM    = 500             // its chatLimiter: "buffer under 600"
	NaiveEmbedRPM   = 250             // its embedLimiter
	NaiveMaxRetries = 4               // togetherRetry's maxRetries
	NaiveBatchSize  = 20              // batchEmbedDocuments' batchSize
	NaiveBatchPause = 3 * time.Second // its fixed sleep between batches
)

// ErrNaiveQueued is the error of a [NaiveLimiter.Acquire] whose context
// ended while it sat in the limiter's queue. The guide's limiter wakes a
// queued caller only from inside a later caller's acquire, so when no later
// caller comes, the original waits forever; the port bounds that wait by the
// context so that a run ends and the hang can be counted.
var ErrNaiveQueued = errors.New("conformance: naive limiter: queued, and no later caller refilled the bucket")

// NaiveLimiter is a faithful port of the guide's TogetherRateLimiter, bugs
// included, so that it can be measured:
//
//   - it starts full (maxPerMinute tokens), so a fresh client fires a burst
//     of up to maxPerMinute requests at once into a provider that enforces
//     its limit per second;
//   - tokens are added only inside Acquire, and a caller that finds none is
//     queued and woken only by the refill of a later Acquire; when none
//     comes, the queued callers wait forever (here: until their context
//     ends, with [ErrNaiveQueued]).
//
// It is safe for concurrent use. Create it inside a testing/synctest bubble
// to run it in virtual time.
type NaiveLimiter struct {
	mu         sync.Mutex
	tokens     float64
	max        float64
	refillRate float64 // tokens per second
	lastRefill time.Time
	queue      []chan struct{}
}

// NewNaiveLimiter returns a full limiter of maxPerMinute requests per
// minute, as `new TogetherRateLimiter(maxPerMinute)` is.
func NewNaiveLimiter(maxPerMinute float64) *NaiveLimiter {
	return &NaiveLimiter{
		tokens:     maxPerMinute,
		max:        maxPerMinute,
		refillRate: maxPerMinute / 60,
		lastRefill: time.Now(),
	}
}

// Acquire takes a token, or queues the caller until a later Acquire's
// refill hands it one. When ctx ends first, the caller leaves the queue and
// Acquire returns an error that wraps both [ErrNaiveQueued] and ctx's cause.
func (l *NaiveLimiter) Acquire(ctx context.Context) error {
	l.mu.Lock()
	l.refill()
	if l.tokens >= 1 {
		l.tokens--
		l.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	l.queue = append(l.queue, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.queue, ch); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
		return fmt.Errorf("%w: %w", ErrNaiveQueued, context.Cause(ctx))
	}
	return nil // a refill handed it a token as the context ended: it is spent
}

// Queued reports how many callers wait in the queue.
func (l *NaiveLimiter) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.queue)
}

// refill is the guide's refill; l.mu is held.
func (l *NaiveLimiter) refill() {
	now := time.Now()
	l.tokens = min(l.max, l.tokens+now.Sub(l.lastRefill).Seconds()*l.refillRate)
	l.lastRefill = now
	for l.tokens >= 1 && len(l.queue) > 0 {
		l.tokens--
		close(l.queue[0])
		l.queue = l.queue[1:]
	}
}

// Naive is the guide's client, ported: a chat limiter of [NaiveChatRPM]
// and an embeddings limiter of [NaiveEmbedRPM], each request through the
// guide's retry loop with the limiter of its endpoint. Create it inside a
// testing/synctest bubble to run it in virtual time.
type Naive struct {
	Chat, Embed *NaiveLimiter // the chat and embeddings limiters

	mu  sync.Mutex
	rng *rand.Rand
}

// NewNaive returns the guide's client with fresh, full limiters; seed seeds
// the retry loop's jitter (Math.random in the guide).
func NewNaive(seed uint64) *Naive {
	return &Naive{
		Chat:  NewNaiveLimiter(NaiveChatRPM),
		Embed: NewNaiveLimiter(NaiveEmbedRPM),
		rng:   rand.New(rand.NewPCG(seed, seed^0x5eed)),
	}
}

func (n *Naive) random() float64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.rng.Float64()
}

// Middleware returns the guide's togetherRetry as a middleware: requests
// to the embeddings endpoint take tokens from n.Embed, all others from
// n.Chat.
func (n *Naive) Middleware() transport.Middleware {
	chat := NaiveRetry(n.Chat, n.random)
	embed := NaiveRetry(n.Embed, n.random)
	return func(next http.RoundTripper) http.RoundTripper {
		c, e := chat(next), embed(next)
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			if transport.Endpoint(req) == transport.EndpointEmbeddings {
				return e.RoundTrip(req)
			}
			return c.RoundTrip(req)
		})
	}
}

// NaiveStatusError is what the guide's retry loop throws for an answer it
// does not retry: `Together API ${status}: ${text}`.
type NaiveStatusError struct {
	Status int    // the answer's status
	Body   string // the start of the answer's body
}

// Error reads as the guide's thrown error: "Together API <status>: <body>".
func (e *NaiveStatusError) Error() string {
	return fmt.Sprintf("Together API %d: %s", e.Status, e.Body)
}

// ErrNaiveMaxRetries is the guide's "Max retries exceeded", thrown when
// every attempt met a 429 (the loop sleeps after the last 429 too, then
// gives up).
var ErrNaiveMaxRetries = errors.New("conformance: naive retry: max retries exceeded")

// NaiveRetry ports the guide's togetherRetry loop as a middleware. For each
// of at most [NaiveMaxRetries]+1 attempts it takes a token from limiter and
// sends the request; a 2xx is returned. A 429 sleeps parseInt(Retry-After)
// seconds, 5 when there is none (x-ratelimit-reset is ignored), plus a jitter
// of up to 2 s drawn by random (in [0, 1)); a 5xx sleeps 2^attempt seconds
// unless it is the last attempt; anything else, and every transport error,
// ends the loop with an error, the answer's body in it. Its sleeps ignore
// the context, as the guide's setTimeout does: they may outlive the
// caller's deadline. This is the baseline steady is measured against, not
// a model to follow.
func NaiveRetry(limiter *NaiveLimiter, random func() float64) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return transport.Func(func(req *http.Request) (*http.Response, error) {
			return naiveRoundTrip(next, limiter, random, req)
		})
	}
}

func naiveRoundTrip(next http.RoundTripper, limiter *NaiveLimiter, random func() float64, req *http.Request) (*http.Response, error) {
	var rp transport.Replay
	if err := rp.Reset(req, 0); err != nil {
		return nil, err
	}
	defer rp.Close()
	ctx := req.Context()
	for attempt := 0; attempt <= NaiveMaxRetries; attempt++ {
		if err := limiter.Acquire(ctx); err != nil {
			return nil, err
		}
		r, err := rp.Request()
		if err != nil {
			return nil, err
		}
		resp, err := next.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		switch code := resp.StatusCode; {
		case code >= 200 && code < 300:
			return resp, nil
		case code == http.StatusTooManyRequests:
			d := naiveRetryAfter(resp.Header.Get("Retry-After"), random())
			transport.Drain(resp)
			time.Sleep(d)
			continue
		case code >= 500 && attempt < NaiveMaxRetries:
			transport.Drain(resp)
			time.Sleep(time.Duration(1<<attempt) * time.Second)
			continue
		}
		return nil, naiveStatusError(resp)
	}
	return nil, ErrNaiveMaxRetries
}

// naiveRetryAfter is the guide's
// `parseInt(res.headers.get("Retry-After") || "5", 10) * 1000 + Math.random() * 2000`
// as setTimeout reads it: leading digits only; no digits is NaN, which
// setTimeout takes as no delay at all; a delay beyond 2^31-1 ms overflows
// to 1 ms.
func naiveRetryAfter(header string, random float64) time.Duration {
	if header == "" {
		header = "5"
	}
	i := 0
	for i < len(header) && (header[i] == ' ' || header[i] == '\t' || header[i] == '\n' || header[i] == '\r') {
		i++
	}
	neg := false
	if i < len(header) && (header[i] == '+' || header[i] == '-') {
		neg = header[i] == '-'
		i++
	}
	var secs float64
	digits := 0
	for ; i < len(header) && header[i] >= '0' && header[i] <= '9'; i++ {
		secs = secs*10 + float64(header[i]-'0')
		digits++
	}
	if digits == 0 {
		return 0 // NaN
	}
	if neg {
		secs = -secs
	}
	ms := secs*1000 + random*2000
	switch {
	case ms < 1:
		return 0
	case ms > 1<<31-1:
		return time.Millisecond
	}
	return time.Duration(ms * float64(time.Millisecond))
}

func naiveStatusError(resp *http.Response) error {
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, transport.DrainLimit))
	return &NaiveStatusError{Status: resp.StatusCode, Body: string(text)}
}

// NaiveEmbed ports the guide's batchEmbedDocuments: it sends texts to
// baseURL+"/embeddings" in batches of [NaiveBatchSize], one after the
// other, sleeping [NaiveBatchPause] after each but the last whatever the
// server says, and stops at the first error. It returns how many texts
// were embedded. The client is expected to carry the guide's retry loop
// ([Naive.Middleware]). Like the guide's setTimeout, the sleeps ignore ctx.
func NaiveEmbed(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
	return embedBatches(ctx, client, baseURL, model, texts, NaiveBatchSize, NaiveBatchPause)
}

// EmbedSequential is the plain embedding job, the default of a [Stack]
// without its own: batches of size texts (0 means [NaiveBatchSize]) sent one
// after the other, without pauses, stopping at the first error. It returns
// how many texts were embedded.
func EmbedSequential(size int) EmbedFunc {
	if size <= 0 {
		size = NaiveBatchSize
	}
	return func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
		return embedBatches(ctx, client, baseURL, model, texts, size, 0)
	}
}

type embedResult struct {
	Data []struct {
		Index     int       `json:"index"`
		Embedding []float64 `json:"embedding"`
	} `json:"data"`
}

func embedBatches(ctx context.Context, client *http.Client, baseURL, model string, texts []string, size int, pause time.Duration) (int, error) {
	done := 0
	for i := 0; i < len(texts); i += size {
		batch := texts[i:min(i+size, len(texts))]
		body, err := json.Marshal(struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}{model, batch})
		if err != nil {
			return done, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/embeddings", bytes.NewReader(body))
		if err != nil {
			return done, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return done, err
		}
		var res embedResult
		err = json.NewDecoder(resp.Body).Decode(&res)
		_ = resp.Body.Close()
		switch {
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			return done, fmt.Errorf("conformance: embeddings: status %d", resp.StatusCode)
		case err != nil:
			return done, fmt.Errorf("conformance: embeddings: %w", err)
		case len(res.Data) != len(batch):
			return done, fmt.Errorf("conformance: embeddings: %d vectors for %d texts", len(res.Data), len(batch))
		}
		done += len(batch)
		if pause > 0 && i+size < len(texts) {
			time.Sleep(pause) // the guide's setTimeout: deaf to ctx
		}
	}
	return done, nil
}
