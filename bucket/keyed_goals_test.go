package bucket_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// TestKeyedTokenBoundGoal is the token-bound key of the issue with the
// keyed limiter composed by hand: told the key's token limit (3,000 a
// minute, enforced per second) against a server that states nothing but
// a 429's reset, and whose answers report their usage. Each request
// allows 512 tokens and uses about 15. With the usage, the limiter
// charges what the requests use: it finishes within 1.6 times the
// oracle's time (the limiter runs at exactly the server's rate, and each
// of its rare 429s lowers the rate for a minute), with at most 2% of
// 429s. With the usage hidden, it charges max_tokens and runs at a
// fortieth of the limit.
func TestKeyedTokenBoundGoal(t *testing.T) {
	sc := conformance.TokenBoundScenario(conformance.DialectOpenAI)
	sc.Server.Headers = 0
	lim := sc.Server.Limits[conformance.Chat]
	lim.TokenBurst = 0 // a second of the limit
	sc.Server.Limits = map[string]conformance.Limit{conformance.Chat: lim}
	stack := func(hide bool) conformance.Stack {
		return conformance.Stack{Name: "keyed", Wrap: func(next http.RoundTripper) http.RoundTripper {
			if hide {
				next = conformance.HideUsage(next)
			}
			return transport.Chain(next, transport.Inspect(), retry.New(),
				bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(bucket.TokenLimit{Rate: bucket.PerMinute(3000), Window: time.Second})))
		}}
	}
	var with, alone conformance.Outcome
	synctest.Test(t, func(t *testing.T) { with = conformance.Run(sc, stack(false)) })
	alone429s := 0.0
	synctest.Test(t, func(t *testing.T) {
		short := sc
		short.Workload.Requests = 40
		short.Workload.Horizon = 10 * time.Minute
		alone = conformance.Run(short, stack(true))
		alone429s = alone.TooManyShare()
	})
	t.Logf("with usage: %d requests in %v, oracle %v (×%.3f), 429s %.2f%%", with.Requests, with.Wall.Round(time.Millisecond),
		with.Least.Round(time.Millisecond), with.Ratio(), 100*with.TooManyShare())
	t.Logf("max_tokens alone: %d of %d requests in %v, oracle %v for them (×%.3f), 429s %.2f%%", alone.Succeeded, alone.Requests,
		alone.Wall.Round(time.Millisecond), alone.Least.Round(time.Millisecond), alone.Ratio(), 100*alone429s)
	assert.Equal(t, with.Requests, with.Succeeded)
	assert.LessOrEqual(t, with.Ratio(), 1.6)
	assert.LessOrEqual(t, with.TooManyShare(), 0.02)
	assert.Greater(t, alone.Ratio(), 20.0, "a fraction of the limit")
}
