package together_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

// presetStack is the preset as a user sets it up: defaults, plus the
// scenarios' second chat model as the first one's fallback.
var presetStack = conformance.Stack{
	Name: "together",
	Wrap: func(next http.RoundTripper) http.RoundTripper {
		return together.NewTransport(next, together.WithAPIKey("scenario-key"),
			together.WithBaseURL(conformance.ScenarioBaseURL),
			together.WithFallback(conformance.ScenarioChatModel, conformance.ScenarioFallbackModel))
	},
	Embed: func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
		vecs, err := together.EmbedAll(ctx, client, model, texts, together.WithAPIBase(baseURL))
		n := 0
		for _, v := range vecs {
			if v != nil {
				n++
			}
		}
		return n, err
	},
}

// TestScenarios holds the preset to the goals of the bucket, breaker and
// together issues on every scenario of the comparison.
func TestScenarios(t *testing.T) {
	type goal struct {
		max429 float64 // most 429s, as a share of arrivals
		ratio  float64 // most wall time over the oracle's; 0: not checked
	}
	goals := map[string]goal{
		"chat-burst":    {max429: 0.005, ratio: 1.02},
		"embed-job":     {max429: 0.01, ratio: 1.05},
		"lower-tier":    {max429: 0.05, ratio: 1.15},
		"dynamic":       {max429: 0.02, ratio: 1.10}, // the oracle's limit grows as it uses it
		"minute-window": {max429: 0.01, ratio: 1.10},
		"flaky-5xx":     {max429: 0.01, ratio: 1.10},
		"overloaded":    {max429: 0.01},
		"deadline":      {max429: 1},
	}
	for _, sc := range conformance.Scenarios() {
		g, ok := goals[sc.Name]
		if !ok {
			t.Errorf("scenario %q has no goal here", sc.Name)
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := conformance.Run(sc, presetStack)
				share429 := o.TooManyShare()
				t.Logf("requests %d, succeeded %d, failed %d, hung %d, arrivals %d, 429s %d (%.2f%%), 5xx %d, wall %v, oracle %v (×%.3f), max late %v",
					o.Requests, o.Succeeded, o.Failed, o.Hung, o.Arrivals, o.TooMany, 100*share429, o.ServerErrors,
					o.Wall.Round(time.Millisecond), o.Least.Round(time.Millisecond), o.Ratio(), o.MaxLate)
				assert.Zero(t, o.Hung, "no caller waits past its deadline or the horizon")
				assert.Zero(t, o.MaxLate, "no answer comes after its deadline")
				if sc.Name != "deadline" {
					assert.Equal(t, o.Requests, o.Succeeded, "every request succeeds")
					assert.Equal(t, o.Texts, o.Embedded, "every text is embedded")
				}
				assert.LessOrEqual(t, share429, g.max429, "429s as a share of arrivals")
				if g.ratio > 0 {
					assert.LessOrEqual(t, o.Ratio(), g.ratio, "wall time over the oracle's")
				}
			})
		})
	}
}
