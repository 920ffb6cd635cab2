package together_test

import (
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// A fine-tune is sent again, by the route's slot retry, while the account's
// jobs are all running (409). It is still one request: one EventDone, of
// the answer the caller gets, so that steady.requests counts it once and
// not once per 409 met on the way.
func TestAFineTuneSentAgainAfterConflictsIsOneRequestDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		rt := together.NewTransport(sequence(func(i int) (int, http.Header) {
			if i < 2 {
				return http.StatusConflict, http.Header{"Retry-After": {"1"}}
			}
			return http.StatusOK, nil
		}), together.WithAPIKey("k"), together.WithEvents(log.Record))
		req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/fine-tunes",
			strings.NewReader(`{"model":"m","training_file":"f"}`))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		var done []string
		for _, e := range log.Events() {
			if e.Kind == transport.EventDone {
				done = append(done, brief([]transport.Event{e})...)
			}
		}
		assert.Equal(t, []string{"done fine-tunes  a3 s200 > "}, done, "every event: %v", brief(log.Events()))
	})
}
