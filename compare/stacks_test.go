package main

import (
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// Every stack gets plain work done when nothing pushes back: a closed loop
// of chat requests and an embedding job.
func TestStacksDoPlainWork(t *testing.T) {
	chat := conformance.Scenario{Name: "plain", Workload: conformance.Workload{
		Model: conformance.ScenarioChatModel, Requests: 20, Concurrency: 4,
	}}
	job := conformance.Scenario{Name: "job", Workload: conformance.Workload{
		Model: conformance.ScenarioEmbedModel, Texts: 60,
	}}
	names := map[string]bool{}
	for _, st := range stacks() {
		require.False(t, names[st.Name], "duplicate stack %s", st.Name)
		names[st.Name] = true
		t.Run(st.Name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				o := conformance.Run(chat, st)
				assert.True(t, o.Complete(), "%+v", o)
				assert.Equal(t, 20, o.Arrivals)
				j := conformance.Run(job, st)
				assert.Equal(t, 60, j.Embedded)
				assert.NoError(t, j.JobErr)
			})
		})
	}
	for _, ms := range matrixStacks() {
		for _, told := range []conformance.Told{{Factor: 1, Endpoint: conformance.Chat, RPM: 600}, {Endpoint: conformance.Chat}} {
			t.Run(ms.Name+"/told "+told.String(), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					st := ms.Build(told)
					assert.Equal(t, ms.Name, st.Name)
					o := conformance.Run(chat, st)
					assert.True(t, o.Complete(), "%+v", o)
					assert.Equal(t, 20, o.Arrivals)
				})
			})
		}
	}
}

func TestWriteDocs(t *testing.T) {
	s := conformance.Scenario{
		Name:     "small",
		Title:    "A small burst",
		About:    "Twenty requests against 60 RPM.",
		Server:   conformance.Config{Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 60}}},
		Workload: conformance.Workload{Model: conformance.ScenarioChatModel, Requests: 20, Concurrency: 2},
	}
	run := scenarioRun{Scenario: s}
	for _, st := range stacks()[:3] {
		synctest.Test(t, func(t *testing.T) { run.Outcomes = append(run.Outcomes, conformance.Run(s, st)) })
	}
	// A small matrix: the strict bucket's case, cut short, for two stacks.
	var cases []conformance.MatrixCase
	for _, c := range conformance.Matrix() {
		if c.Name == "nginx-no-burst" {
			c.Scenario.Workload.Requests = 100
			cases = append(cases, c)
		}
	}
	require.Len(t, cases, 1)
	var matrix []matrixRun
	for _, ms := range matrixStacks()[:2] {
		matrix = append(matrix, matrixRun{Stack: ms.Name, Results: conformance.RunMatrix(t, cases, ms.Build)})
	}
	dir := t.TempDir()
	require.NoError(t, writeDocs(dir, []scenarioRun{run}, nil, matrix))

	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "\n## A small burst\n\nTwenty requests against 60 RPM.\n\n| stack |")
	assert.Contains(t, string(md), "![A small burst](comparison-small.png)")
	for _, st := range stacks()[:3] {
		assert.Contains(t, string(md), "\n| "+st.Name+" | 20 |", "a row per stack")
	}

	doc := string(md)
	assert.Contains(t, doc, "\n## The model matrix\n")
	assert.Contains(t, doc, "| server | told | goal | steady retry+bucket | steady together |\n")
	for _, told := range []string{"the limit (600 RPM)", "2× the limit (1200 RPM)", "nothing"} {
		assert.Contains(t, doc, "| "+cases[0].Title+" | "+told+" | ≤ 1.10, ≤ 2% 429s | ", "a row per telling")
	}
	assert.Contains(t, doc, "Goals met: steady retry+bucket ")
	assert.Contains(t, doc, "<details><summary>steady together, run by run</summary>")
	assert.Contains(t, doc, "| server | told | time / oracle | 429 share | failed | goal |")

	for _, name := range []string{"comparison-small.png", "comparison-matrix-nginx-no-burst-told-1x.png", "comparison-matrix-nginx-no-burst-told-nothing.png"} {
		assert.Contains(t, doc, "("+name+")")
		f, err := os.Open(filepath.Join(dir, name))
		require.NoError(t, err)
		cfg, err := png.DecodeConfig(f)
		f.Close()
		require.NoError(t, err, name)
		assert.Equal(t, 960, cfg.Width)
		assert.Equal(t, 432, cfg.Height)
	}
	_, err = os.Stat(filepath.Join(dir, "comparison-matrix-nginx-no-burst-told-2x.png"))
	assert.ErrorIs(t, err, os.ErrNotExist, "told twice the limit: not plotted")
}

func TestMatrixCell(t *testing.T) {
	c := conformance.MatrixCase{Goal: conformance.Goal{Ratio: 1.1, TooMany: 0.02}}
	tests := []struct {
		o    conformance.Outcome
		want string
	}{
		{conformance.Outcome{Requests: 10, Succeeded: 10, Wall: 105, Least: 100, Arrivals: 10}, "1.050 · 0%"},
		{conformance.Outcome{Requests: 10, Succeeded: 10, Wall: 150, Least: 100, Arrivals: 10}, "1.500 · 0% ✗"},
		{conformance.Outcome{Requests: 10, Succeeded: 7, Failed: 3, Wall: 100, Least: 100, Arrivals: 20, TooMany: 10}, "1.000 · 50% · 3 failed ✗"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, matrixCell(conformance.MatrixResult{Case: c, Outcome: tt.o}))
	}
}

func TestPlotSpan(t *testing.T) {
	s := conformance.Scenario{}
	outs := []conformance.Outcome{
		{Least: 100 * time.Second, AcceptedAt: []time.Duration{0, 90 * time.Second}},
		{Least: 100 * time.Second, AcceptedAt: []time.Duration{0, time.Hour}},
	}
	assert.Equal(t, 315*time.Second, plotSpan(s, outs), "at most 3 × least, plus 5%")
	assert.Equal(t, 105*time.Second, plotSpan(s, outs[:1]), "at least the oracle's time, plus 5%")
	assert.Equal(t, 2*time.Second, plotBin(315*time.Second))
	assert.Equal(t, time.Second, plotBin(105*time.Second))
}

// The compared stacks that take a rate are given the same figures: a peer
// set below the rate steady's stack is given shows in the tables as that
// peer's slowness. Against the chat burst's server, failsafe-go's limiter
// finishes with steady retry+bucket's.
func TestPeersToldTheRatesSteadyIs(t *testing.T) {
	var sc conformance.Scenario
	for _, s := range conformance.Scenarios() {
		if s.Name == "chat-burst" {
			sc = s
		}
	}
	require.NotEmpty(t, sc.Name)
	sc.Workload.Requests = 600
	synctest.Test(t, func(t *testing.T) {
		steady := conformance.Run(sc, conformance.Stack{Name: "steady retry+bucket", Wrap: steadyRetryBucket})
		peer := conformance.Run(sc, conformance.Stack{Name: "failsafe-go", Wrap: failsafe})
		require.True(t, steady.Complete(), "%v", steady)
		require.True(t, peer.Complete(), "%v", peer)
		assert.LessOrEqual(t, peer.Ratio(), steady.Ratio()*1.05, "failsafe-go: %v\nsteady: %v", peer, steady)
	})
}

func TestPresetMarkdown(t *testing.T) {
	assert.Nil(t, presetMarkdown(nil))
	fast := conformance.Scenario{Name: "fast", Goal: conformance.ScenarioGoal{TooMany: 0.01, Ratio: 1.10}}
	job := conformance.Scenario{Name: "job", Goal: conformance.ScenarioGoal{TooMany: 0.02, MayFail: true}}
	good := conformance.Outcome{Requests: 100, Succeeded: 100, Arrivals: 100, Wall: 105, Least: 100}
	slow := good
	slow.Wall = 120
	failed := good
	failed.Succeeded, failed.Failed, failed.Servable = 90, 10, 90
	md := string(presetMarkdown([]presetRun{
		{Stack: "one", Scenarios: []conformance.Scenario{fast, job}, Outcomes: []conformance.Outcome{good, failed}},
		{Stack: "two", Scenarios: []conformance.Scenario{fast}, Outcomes: []conformance.Outcome{slow}},
	}))
	assert.Contains(t, md, "\n## The OpenAI and Anthropic presets\n")
	assert.Contains(t, md, "| scenario | goal | one | two |\n| --- | --- | --- | --- |\n")
	assert.Contains(t, md, "| fast | ≤ 1.10, ≤ 1% 429s | 1.050 · 0% | 1.200 · 0% ✗ |\n", "a miss is marked")
	assert.Contains(t, md, "| job | ≤ 2% 429s, those the oracle serves succeed | 1.050 · 0% · 10 failed | — |\n",
		"failures the goal allows are counted, not marked; a scenario a preset has not is a dash")
}
