package bucket_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/internal/limitreq"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// TestAgainstASimulatedNginx holds retry + bucket.Limit to the goals of
// the real nginx cases (compare/reallimit), on a model of limit_req with
// few callers and loopback's latency, where every answer is in between two
// refusals: the case the simulated provider's matrix, with its many
// callers and long latencies, does not reach.
func TestAgainstASimulatedNginx(t *testing.T) {
	limitreq.HoldToGoals(t, func(told float64) func(http.RoundTripper) http.RoundTripper {
		rate := bucket.Rate{}
		if told > 0 {
			rate = bucket.PerSecond(10 * told)
		}
		return func(next http.RoundTripper) http.RoundTripper {
			return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate)))
		}
	})
}

// TestOnALoadedMachine holds retry + bucket.Limit to the real nginx runs'
// bounds on a loaded machine, on the model of one they were measured on
// (limitreq.Loaded, whose figures match theirs but in one case).
// STEADY_SPREAD=100 logs its figures over 100 seeds.
func TestOnALoadedMachine(t *testing.T) {
	limitreq.HoldToBounds(t, limitreq.Loaded, 8, func(told float64) func(http.RoundTripper) http.RoundTripper {
		rate := bucket.Rate{}
		if told > 0 {
			rate = bucket.PerSecond(10 * told)
		}
		return func(next http.RoundTripper) http.RoundTripper {
			return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate)))
		}
	})
}
