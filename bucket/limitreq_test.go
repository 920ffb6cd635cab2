package bucket_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

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
	for _, burst := range []int{10, 0} {
		for _, told := range []float64{1, 2, 0} {
			t.Run(fmt.Sprintf("burst=%d/told=%gx", burst, told), func(t *testing.T) {
				rate := bucket.Rate{}
				if told > 0 {
					rate = bucket.PerSecond(10 * told)
				}
				for seed := range uint64(4) {
					ratio, share := limitreq.Run(t, burst, seed, func(next http.RoundTripper) http.RoundTripper {
						return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate)))
					})
					t.Logf("seed %d: %.3f, %.2f%% 429s", seed, ratio, 100*share)
					assert.LessOrEqual(t, ratio, 1.15, "seed %d: time / least time", seed)
					assert.LessOrEqual(t, share, 0.02, "seed %d: 429s", seed)
				}
			})
		}
	}
}
