package openai_test

import (
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/internal/scenariostack"
	"github.com/steadyapi/steady/openai"
)

// presetStack is the preset as a user sets it up against the simulator
// speaking OpenAI's dialect, as the comparison runs it too.
var presetStack = scenariostack.OpenAI("openai")

// maxTokensAlone is the preset with the usage of every answer hidden from
// it: what a client that charges max_tokens and never learns better gets.
var maxTokensAlone = conformance.Stack{
	Name: "openai, max_tokens alone",
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

// TestScenarios holds the preset, on the simulator speaking OpenAI's
// dialect, to every scenario's goal: the Together preset's, and the
// token-bound key's.
func TestScenarios(t *testing.T) {
	for _, sc := range conformance.ScenariosFor(conformance.DialectOpenAI) {
		t.Run(sc.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { sc.Goal.Grade(t, conformance.Run(sc, presetStack)) })
		})
	}
}

// TestMaxTokensAlone shows what the usage of answers is worth to the
// preset on the token-bound key. OpenAI states what remains of its token
// limit on every answer, and the limiter follows that count; but a
// limiter that charges each request the 512 tokens it allows can never
// use the last 512 of the server's bucket, and loses that much time at
// the start. The usage teaches the share of max_tokens the answers use,
// which the next requests are charged.
func TestMaxTokensAlone(t *testing.T) {
	sc := conformance.TokenBoundScenario(conformance.DialectOpenAI)
	var with, alone conformance.Outcome
	synctest.Test(t, func(t *testing.T) { with = run(t, sc, presetStack) })
	synctest.Test(t, func(t *testing.T) { alone = run(t, sc, maxTokensAlone) })
	assert.Equal(t, with.Requests, with.Succeeded)
	assert.Equal(t, alone.Requests, alone.Succeeded)
	assert.LessOrEqual(t, with.Ratio(), 1.10)
	assert.Greater(t, alone.Ratio(), 1.2*with.Ratio(), "max_tokens alone is slower")
}

// TestToldLessFollowsTheServersCounts: a rate given by WithRate is the
// ceiling of the limiter's rate, but what the server says remains of its
// count is sent whatever the rate. Told 60 requests a minute, against a
// key of 600 whose answers state what remains of its minute's bucket, the
// preset meets the chat burst's goal, not held to 60 a minute (which would
// take 50 minutes).
func TestToldLessFollowsTheServersCounts(t *testing.T) {
	var sc conformance.Scenario
	for _, s := range conformance.ScenariosFor(conformance.DialectOpenAI) {
		if s.Name == "chat-burst" {
			sc = s
		}
	}
	told := conformance.Stack{Name: "told 60", Wrap: func(next http.RoundTripper) http.RoundTripper {
		return openai.NewTransport(next, openai.WithAPIKey("scenario-key"),
			openai.WithBaseURL(conformance.ScenarioBaseURL), openai.WithRate(openai.RouteChat, 60))
	}}
	synctest.Test(t, func(t *testing.T) { sc.Goal.Grade(t, conformance.Run(sc, told)) })
}
