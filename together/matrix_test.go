package together_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

// TestMatrix holds the preset to the goal of every server model of
// conformance.Matrix, told the right chat rate (WithRate), twice it and
// nothing: Together's dynamic limit above all, which the preset predicts
// from Together's published rule, and every other server a key may meet
// behind an OpenAI-compatible root.
func TestMatrix(t *testing.T) {
	results := conformance.RunMatrix(t, conformance.Matrix(), func(told conformance.Told) conformance.Stack {
		return conformance.Stack{Name: "together", Wrap: func(next http.RoundTripper) http.RoundTripper {
			return together.NewTransport(next, together.WithAPIKey("matrix-key"),
				together.WithBaseURL(conformance.ScenarioBaseURL),
				together.WithRate(together.RouteChat, told.RPM)) // 0 when told nothing: unknown
		}}
	})
	conformance.HoldMatrix(t, results, shortfalls)
}

// shortfalls are bucket.Limit's (see bucket/matrix_test.go, which says
// why each falls short), held to the same bounds here. None does today.
var shortfalls = map[string]conformance.Goal{}
