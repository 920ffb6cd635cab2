package conformance_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
)

func TestScenarioGoalMisses(t *testing.T) {
	g := conformance.ScenarioGoal{TooMany: 0.01, Ratio: 1.10}
	good := conformance.Outcome{Requests: 100, Succeeded: 100, Arrivals: 100, TooMany: 1, Wall: 105, Least: 100}
	assert.Empty(t, g.Misses(good))

	for name, tc := range map[string]struct {
		change func(*conformance.Outcome)
		goal   conformance.ScenarioGoal
		want   string
	}{
		"hung":           {func(o *conformance.Outcome) { o.Hung = 2 }, g, "2 callers waited past their deadline"},
		"late":           {func(o *conformance.Outcome) { o.MaxLate = 7 }, g, "an answer came 7ns after its deadline"},
		"failed":         {func(o *conformance.Outcome) { o.Succeeded = 99 }, g, "99 of 100 requests succeeded"},
		"text lost":      {func(o *conformance.Outcome) { o.Texts, o.Embedded = 20, 19 }, g, "19 of 20 texts embedded"},
		"too many 429s":  {func(o *conformance.Outcome) { o.TooMany = 2 }, g, "429s were 2% of arrivals, the goal at most 1%"},
		"too slow":       {func(o *conformance.Outcome) { o.Wall = 111 }, g, "1.110 of the oracle's time, the goal at most 1.10"},
		"no oracle":      {func(o *conformance.Outcome) { o.Least = 0 }, g, "the oracle's time is 0"},
		"slow, ungraded": {func(o *conformance.Outcome) { o.Wall = 500 }, conformance.ScenarioGoal{TooMany: 0.01}, ""},
		"may fail":       {func(o *conformance.Outcome) { o.Succeeded = 1 }, conformance.ScenarioGoal{TooMany: 0.01, Ratio: 1.10, MayFail: true}, ""},
	} {
		o := good
		tc.change(&o)
		m := tc.goal.Misses(o)
		if tc.want == "" {
			assert.Empty(t, m, name)
			continue
		}
		if assert.Len(t, m, 1, name) {
			assert.Contains(t, m[0], tc.want, name)
		}
	}
}

func TestMatrixMissesHoldsShortfallsToTheirBounds(t *testing.T) {
	c := conformance.MatrixCase{Name: "x", Goal: conformance.Goal{Ratio: 1.05, TooMany: 0.01}}
	run := func(wall int, tooMany int) conformance.MatrixResult {
		return conformance.MatrixResult{Case: c, Outcome: conformance.Outcome{
			Requests: 100, Succeeded: 100, Arrivals: 100, TooMany: tooMany, Wall: dur(wall), Least: 100}}
	}
	short := map[string]conformance.Goal{"x/nothing": {Ratio: 1.20, TooMany: 0.05}}
	assert.Empty(t, conformance.MatrixMisses([]conformance.MatrixResult{run(104, 1)}, nil))
	assert.Len(t, conformance.MatrixMisses([]conformance.MatrixResult{run(110, 1)}, nil), 1, "over the goal")
	assert.Len(t, conformance.MatrixMisses([]conformance.MatrixResult{run(104, 2)}, nil), 1, "429s over the goal")
	failed := run(104, 1)
	failed.Outcome.Succeeded = 99
	if m := conformance.MatrixMisses([]conformance.MatrixResult{failed}, nil); assert.Len(t, m, 1, "a request failed") {
		assert.Contains(t, m[0], "1 failed")
	}
	embedded := run(104, 1)
	embedded.Outcome.Texts, embedded.Outcome.Embedded = 20, 19
	assert.Len(t, conformance.MatrixMisses([]conformance.MatrixResult{embedded}, nil), 1, "a text was not embedded")
	assert.Empty(t, conformance.MatrixMisses([]conformance.MatrixResult{run(110, 3)}, short), "within the shortfall's bound")
	assert.Len(t, conformance.MatrixMisses([]conformance.MatrixResult{run(110, 6)}, short), 1, "429s over the shortfall's bound")
	m := conformance.MatrixMisses([]conformance.MatrixResult{run(130, 3)}, short)
	if assert.Len(t, m, 1) {
		assert.Contains(t, m[0], "a known shortfall's bound")
	}
}

func dur(n int) time.Duration { return time.Duration(n) }
