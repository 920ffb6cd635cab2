package conformance_test

import (
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// A 429's one-limit headers (express-rate-limit's forms) describe the
// limit that refused it: here the request limit, though the token bucket,
// which had room, takes longer to fill again. Describing the token limit
// told the client it had 98 left and to come back when the token bucket was
// full, not when a request would pass.
func TestA429sOneLimitHeadersDescribeTheLimitThatRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{
			Headers: conformance.HeaderLegacy,
			Limits: map[string]conformance.Limit{conformance.Chat: {
				RPM: 60, TPM: 60, TokenBurst: 100, // 1 request at once; 100 tokens, refilled 1 a second
			}},
		})
		require.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
		r := srvChat(t, srv, "k") // the request limit refuses; the tokens (2 of 100 spent) would pass
		require.Equal(t, http.StatusTooManyRequests, r.status, r.body)
		assert.Equal(t, conformance.ErrorRequestLimited, srvErrorType(t, r.body))
		assert.Equal(t, "1", r.header.Get("X-Ratelimit-Limit"), "the request limit's quota")
		assert.Equal(t, "0", r.header.Get("X-Ratelimit-Remaining"))
		assert.Equal(t, strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10), r.header.Get("X-Ratelimit-Reset"),
			"when a request passes again: in a second")
	})
}
