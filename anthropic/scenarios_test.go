package anthropic_test

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/internal/scenariostack"
)

// presetStack is the preset as a user sets it up against the simulator
// speaking Anthropic's dialect, as the comparison runs it too.
var presetStack = scenariostack.Anthropic("anthropic")

// maxTokensAlone is the preset with the usage of every answer hidden from
// it.
var maxTokensAlone = conformance.Stack{
	Name: "anthropic, max_tokens alone",
	Wrap: func(next http.RoundTripper) http.RoundTripper {
		return presetStack.Wrap(conformance.HideUsage(next))
	},
}

func run(t *testing.T, sc conformance.Scenario, st conformance.Stack) conformance.Outcome {
	t.Helper()
	o := conformance.Run(sc, st)
	t.Logf("%s: %v", st.Name, o)
	return o
}

// TestScenarios holds the preset, on the simulator speaking Anthropic's
// dialect, to every scenario's goal: the Together preset's, and the
// token-bound key's.
func TestScenarios(t *testing.T) {
	for _, sc := range conformance.ScenariosFor(conformance.DialectAnthropic) {
		t.Run(sc.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { sc.Goal.Grade(t, conformance.Run(sc, presetStack)) })
		})
	}
}

// TestMaxTokensAlone: charging each request the 512 output tokens it
// allows, against an output limit of 1,800 a minute, the preset keeps the
// last 512 of the server's bucket unused; the usage of the answers teaches
// it the share of max_tokens they use.
func TestMaxTokensAlone(t *testing.T) {
	sc := conformance.TokenBoundScenario(conformance.DialectAnthropic)
	var with, alone conformance.Outcome
	synctest.Test(t, func(t *testing.T) { with = run(t, sc, presetStack) })
	synctest.Test(t, func(t *testing.T) { alone = run(t, sc, maxTokensAlone) })
	assert.Equal(t, with.Requests, with.Succeeded)
	assert.Equal(t, alone.Requests, alone.Succeeded)
	assert.LessOrEqual(t, with.Ratio(), 1.10)
	assert.Greater(t, alone.Ratio(), 1.2*with.Ratio(), "max_tokens alone is slower")
}
