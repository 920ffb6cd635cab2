package bucket_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
)

// arrivalsBase is a base that records when each request came (from its
// creation) and answers the nth (from 1) with answer(n, req).
type arrivalsBase struct {
	mu       sync.Mutex
	start    time.Time
	arrivals []time.Duration
	answer   func(n int, req *http.Request) *http.Response
}

func newArrivalsBase(answer func(n int, req *http.Request) *http.Response) *arrivalsBase {
	return &arrivalsBase{start: time.Now(), answer: answer}
}

func (b *arrivalsBase) RoundTrip(req *http.Request) (*http.Response, error) {
	_ = req.Body.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.arrivals = append(b.arrivals, time.Since(b.start))
	return b.answer(len(b.arrivals), req), nil
}

// seen returns the arrivals so far.
func (b *arrivalsBase) seen() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.arrivals)
}

// sendChats sends n chat requests with content through rt, one after
// another, each answer read to its end and closed.
func sendChats(t *testing.T, rt http.RoundTripper, content string, n int) {
	t.Helper()
	for range n {
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/chat/completions",
			strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"`+content+`"}]}`))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
	}
}

// An answer that states what remains of the token limit in any dialect
// the limiter reads its count from is not corrected by its usage on top:
// the count holds what the request used already, and a correction would
// count it twice.
func TestATokenCountInAnyDialectIsNotCorrectedTwice(t *testing.T) {
	for _, dialect := range []string{"Anthropic-Ratelimit-Input-Tokens-", "Anthropic-Ratelimit-Output-Tokens-", "X-Tokenlimit-"} {
		t.Run(dialect, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				used := 0
				base := newArrivalsBase(func(n int, req *http.Request) *http.Response {
					u := 10
					if n == 2 {
						u = 500 // the answer under test: far more than its charge
					}
					used += u
					h := http.Header{}
					h.Set(dialect+"Limit", "1000")
					h.Set(dialect+"Remaining", strconv.Itoa(1000-used))
					h.Set(dialect+"Reset", "60")
					body := fmt.Sprintf(`{"usage":{"input_tokens":%d,"output_tokens":%d,"prompt_tokens":%d,"completion_tokens":%d}}`, u/2, u/2, u/2, u/2)
					return &http.Response{StatusCode: http.StatusOK, Request: req, Header: h, Body: io.NopCloser(strings.NewReader(body))}
				})
				rt := bucket.Keyed(bucket.PerSecond(100))(base)
				sendChats(t, rt, "say hi to me", 3)
				arrivals := base.seen()
				require.Len(t, arrivals, 3)
				assert.Less(t, arrivals[2], time.Second, "490 of the 1,000 remain: the third goes at once")
			})
		})
	}
}

// An answer that states what remains of the token limit, but not when it
// resets (Azure OpenAI's x-ratelimit-remaining-tokens comes alone), gives
// the limiter no count it can take: the usage the answer reports corrects
// the request's charge, as for an answer that states nothing. Charged
// 1,000 tokens for a prompt the server counted as 10, the first request
// gives back 990, and the second goes at once, not after the 40 s the
// charge takes to refill.
func TestATokenCountWithoutAResetIsCorrectedByTheUsage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newArrivalsBase(func(n int, req *http.Request) *http.Response {
			h := http.Header{"X-Ratelimit-Remaining-Tokens": {strconv.Itoa(1200 - 10*n)}}
			return &http.Response{StatusCode: http.StatusOK, Request: req, Header: h,
				Body: io.NopCloser(strings.NewReader(`{"usage":{"prompt_tokens":10,"completion_tokens":0}}`))}
		})
		// 1,200 tokens a minute, the limiter open from the start.
		rt := bucket.Keyed(bucket.PerSecond(100), bucket.WithTokenLimits(bucket.TokenLimit{Rate: bucket.PerMinute(1200)}))(base)
		sendChats(t, rt, strings.Repeat("word", 1000), 2) // 1,000 tokens by the estimate
		arrivals := base.seen()
		require.Len(t, arrivals, 2)
		assert.Less(t, arrivals[1], time.Second, "the charge was corrected to the usage")
	})
}

// A token limiter that a 429's body opened (a refusal of tokens, from a
// server whose headers state no token limit: a proxy that strips them)
// starts from the rate it guessed (the refused request's tokens over the
// server's wait), and finds the limit from there: the guess is no ceiling.
// Held to it, one refusal of a 101-token request with a wait of 10 s held
// the key to one such request every 10 s for good, though the server
// refused nothing more (40 requests in 6 minutes).
func TestATokenLimiterOpenedByARefusalIsNotHeldToItsGuess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newArrivalsBase(func(n int, req *http.Request) *http.Response {
			if n == 2 {
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"10"}}, Request: req,
					Body: io.NopCloser(strings.NewReader(`{"error":{"message":"Rate limit reached for m on tokens per min (TPM)","type":"tokens"}}`))}
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Request: req,
				Body: io.NopCloser(strings.NewReader(`{"usage":{"prompt_tokens":100,"completion_tokens":0}}`))}
		})
		rt := bucket.Keyed(bucket.PerSecond(100))(base)
		sendChats(t, rt, strings.Repeat("word", 100), 40) // 100 tokens by the estimate
		arrivals := base.seen()
		require.Len(t, arrivals, 40)
		assert.GreaterOrEqual(t, arrivals[2], 10*time.Second, "the server's wait")
		// One more at the guess (10 s), then the rest at once: the rate
		// doubles from the guess with every answer.
		assert.Less(t, arrivals[39]-arrivals[2], 15*time.Second, "37 more requests, at a rate found above the guess")
	})
}
