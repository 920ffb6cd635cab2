package conformance_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// The simulator reports usage on every chat answer; through HideUsage the
// same answer reports none, and is otherwise whole.
func TestHideUsageHidesTheUsageOfEveryAnswer(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{})
	body := `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}],"max_tokens":8}`
	for _, tc := range []struct {
		name  string
		rt    http.RoundTripper
		usage bool
	}{
		{"bare", srv, true},
		{"hidden", conformance.HideUsage(srv), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "http://provider.test/v1/chat/completions", strings.NewReader(body))
			require.NoError(t, err)
			resp, err := tc.rt.RoundTrip(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tc.usage, strings.Contains(string(b), `"usage"`), "%s", b)
			assert.Contains(t, string(b), `"choices"`, "the rest of the answer is there")
			if !tc.usage {
				assert.EqualValues(t, len(b), resp.ContentLength)
			}
		})
	}
}

func TestOutcomeStringSaysWhatHappened(t *testing.T) {
	o := conformance.Outcome{Requests: 10, Succeeded: 9, Failed: 1, Arrivals: 12, TooMany: 3,
		Wall: 1500 * time.Millisecond, Least: time.Second}
	assert.Equal(t, "requests 10, succeeded 9, failed 1, hung 0, arrivals 12, 429s 3 (25.00%), 5xx 0, "+
		"wall 1.5s, oracle 1s (×1.500), max late 0s", o.String())
}
