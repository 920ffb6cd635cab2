package anthropic_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/anthropic"
)

// A first answer of 529 overloaded_error, which states no limit, does not
// end the learning: the first answer that states
// anthropic-ratelimit-requests-limit sets the model's rate.
func TestTheRateIsLearntAfterAnOverloadedFirstAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var at []time.Duration
		f := &fake{answer: func(n int, _ string) (int, http.Header, string) {
			at = append(at, time.Since(start))
			if n == 1 {
				return 529, http.Header{}, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
			}
			return http.StatusOK, http.Header{"Anthropic-Ratelimit-Requests-Limit": {"60"}},
				`{"type":"message","usage":{"input_tokens":3,"output_tokens":5}}`
		}}
		rt := anthropic.NewTransport(f, anthropic.WithAPIKey("k"), anthropic.WithMaxRetries(0))
		for range 7 {
			drain(message(t, rt, anthropic.DefaultBaseURL+"/messages", "claude-sonnet-4-5", nil))
		}
		require.Len(t, at, 7)
		assert.GreaterOrEqual(t, at[6]-at[2], 4*time.Second, "one a second after the answer that told 60 a minute")
	})
}
