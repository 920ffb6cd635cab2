package openai_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/openai"
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
