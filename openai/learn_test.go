package openai_test

import (
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/transport"
)

// A first answer that is a server failure stating no limit (a 500 from
// OpenAI, a 502 or 503 of a gateway in front of it) does not end the
// learning: the first answer that states x-ratelimit-limit-requests sets
// the rate, as the Spec says, and the model is held to it.
func TestTheRateIsLearntAfterAFirstAnswerThatFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{start: time.Now(), answer: func(n int, _ *http.Request) (int, http.Header, string) {
			if n == 1 {
				return http.StatusInternalServerError, http.Header{},
					`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`
			}
			return http.StatusOK, http.Header{"X-Ratelimit-Limit-Requests": {"60"}}, `{}`
		}}
		rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"), openai.WithMaxRetries(0))
		for range 7 {
			drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
		}
		require.Len(t, f.at, 7)
		assert.GreaterOrEqual(t, f.at[6]-f.at[2], 4*time.Second, "one a second after the answer that told 60 a minute")
	})
}

// A model's first answer, a 429 of the rate limit that states the limit,
// is heard once: one EventPaused, whichever of the model's limiters acts
// on it (the slow start's, and the one learnt from it, to which the answer
// is told again), and the last rate reported is the learnt limiter's,
// lowered by the 429. The limiters act on it once its body shows it is no
// account out of quota.
func TestAFirst429IsOnePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fake{start: time.Now(), answer: func(n int, _ *http.Request) (int, http.Header, string) {
			h := http.Header{"X-Ratelimit-Limit-Requests": {"60"}, "X-Ratelimit-Remaining-Requests": {"0"}, "X-Ratelimit-Reset-Requests": {"1s"}}
			if n == 1 {
				return http.StatusTooManyRequests, h, `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM)","type":"requests","param":null,"code":"rate_limit_exceeded"}}`
			}
			return http.StatusOK, h, `{}`
		}}
		var mu sync.Mutex
		var paused int
		var rates []float64
		rt := openai.NewTransport(f, openai.WithAPIKey("sk-test"), openai.WithMaxRetries(0), openai.WithEvents(func(e transport.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case transport.EventPaused:
				paused++
			case transport.EventRateChanged:
				rates = append(rates, e.Rate)
			}
		}))
		drain(chat(t, rt, openai.DefaultBaseURL+"/chat/completions"))
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, 1, paused, "one 429, one pause")
		require.NotEmpty(t, rates)
		assert.Less(t, rates[len(rates)-1], 1.0, "the learnt rate of one a second, lowered by the 429, is reported last")
	})
}
