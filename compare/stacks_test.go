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
	dir := t.TempDir()
	require.NoError(t, writeDocs(dir, []scenarioRun{run}))

	md, err := os.ReadFile(filepath.Join(dir, "comparison.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "\n## A small burst\n\nTwenty requests against 60 RPM.\n\n| stack |")
	assert.Contains(t, string(md), "![A small burst](comparison-small.png)")
	for _, st := range stacks()[:3] {
		assert.Contains(t, string(md), "\n| "+st.Name+" | 20 |", "a row per stack")
	}

	f, err := os.Open(filepath.Join(dir, "comparison-small.png"))
	require.NoError(t, err)
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	require.NoError(t, err)
	assert.Equal(t, 960, cfg.Width)
	assert.Equal(t, 432, cfg.Height)
}

func TestPlotSpan(t *testing.T) {
	s := conformance.Scenario{}
	outs := []conformance.Outcome{
		{Least: 100 * time.Second, AcceptedAt: []time.Duration{0, 90 * time.Second}},
		{Least: 100 * time.Second, AcceptedAt: []time.Duration{0, time.Hour}},
	}
	assert.Equal(t, 315*time.Second, plotSpan(s, outs), "at most 3 × least, plus 5%")
	assert.Equal(t, 105*time.Second, plotSpan(s, outs[:1]), "at least the least possible time, plus 5%")
	assert.Equal(t, 2*time.Second, plotBin(315*time.Second))
	assert.Equal(t, time.Second, plotBin(105*time.Second))
}
