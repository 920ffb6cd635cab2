package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/internal/scenariostack"
)

// presetStack is a preset as a user sets it up against the simulator
// speaking its provider's dialect.
type presetStack struct {
	Dialect conformance.Dialect
	Stack   conformance.Stack
}

// presetStacks are the OpenAI and Anthropic presets as their scenario
// tests run them (package scenariostack): their defaults (the rates learnt
// from the first answers) and the scenarios' second chat model as the
// first one's fallback.
func presetStacks() []presetStack {
	return []presetStack{
		{conformance.DialectOpenAI, scenariostack.OpenAI("steady openai")},
		{conformance.DialectAnthropic, scenariostack.Anthropic("steady anthropic")},
	}
}

// presetRun is one preset's runs of its dialect's scenarios
// (conformance.ScenariosFor).
type presetRun struct {
	Stack     string
	Scenarios []conformance.Scenario
	Outcomes  []conformance.Outcome // in the order of Scenarios
}

// presetMarkdown renders the presets' section of the comparison: one row
// a scenario, one column a preset, each cell its time against the
// oracle's and its share of 429s, ✗ where it misses the scenario's goal.
func presetMarkdown(runs []presetRun) []byte {
	if len(runs) == 0 {
		return nil
	}
	var b bytes.Buffer
	b.WriteString(`
## The OpenAI and Anthropic presets

Each preset against the simulator speaking its provider's dialect
(` + "`conformance.ScenariosFor`" + `): its error bodies and rate headers, its limits per
model, and its buckets holding a minute of their rate, as OpenAI and Anthropic describe
theirs. The scenarios are the ones above, but for Together's dynamic limit (and, for
Anthropic, which has no embeddings, the job), and a key whose token limit binds before
its request limit, against a server that counts the tokens a request uses. The presets
run with their defaults: they learn each model's limits from its first answer. Each
cell is the time against the oracle's and the share of arrivals answered 429; ✗ marks
a run that misses the goal (every request succeeds, within both figures), — a scenario
the dialect has not.

`)
	head := []string{"scenario", "goal"}
	for _, r := range runs {
		head = append(head, r.Stack)
	}
	writeHead(&b, head)
	var names []string
	goals := map[string]conformance.ScenarioGoal{}
	for _, r := range runs {
		for _, s := range r.Scenarios {
			if _, ok := goals[s.Name]; !ok {
				names = append(names, s.Name)
			}
			goals[s.Name] = s.Goal
		}
	}
	for _, name := range names {
		row := []string{name, goalString(goals[name])}
		for _, r := range runs {
			row = append(row, presetCell(r, name))
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	return b.Bytes()
}

// goalString is a scenario's goal as the table shows it.
func goalString(g conformance.ScenarioGoal) string {
	s := fmt.Sprintf("≤ %s 429s", conformance.FormatShare(g.TooMany))
	if g.Ratio > 0 {
		s = fmt.Sprintf("≤ %.2f, ", g.Ratio) + s
	}
	if g.MayFail {
		s += ", those the oracle serves succeed"
	}
	return s
}

// presetCell is r's figures in the scenario named name.
func presetCell(r presetRun, name string) string {
	for i, s := range r.Scenarios {
		if s.Name != name {
			continue
		}
		o := r.Outcomes[i]
		failed := 0
		if o.Texts == 0 {
			failed = o.Requests - o.Succeeded
		}
		return figures(o, failed, len(s.Goal.Misses(o)) == 0)
	}
	return "—"
}
