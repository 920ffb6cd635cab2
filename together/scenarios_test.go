package together_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"

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

// TestScenarios holds the preset to every scenario's goal.
func TestScenarios(t *testing.T) {
	for _, sc := range conformance.Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { sc.Goal.Grade(t, conformance.Run(sc, presetStack)) })
		})
	}
}
