package main

import (
	"flag"
	"regexp"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

var (
	docsFlag = flag.String("compare.docs", "", "directory to write comparison.md and the plots into; empty skips TestCompare")
	runFlag  = flag.String("compare.run", "", "regular expression selecting the scenarios (and matrix-<case>) to run")
)

// TestCompare runs every scenario against every stack, and the model
// matrix against the stacks graded on it, and writes the comparison into
// the -compare.docs directory. It is what `go run ./compare` runs: the
// runs need testing/synctest bubbles, which only a test can create.
func TestCompare(t *testing.T) {
	if *docsFlag == "" {
		t.Skip("run by `go run ./compare`, which sets -compare.docs")
	}
	re, err := regexp.Compile(*runFlag)
	require.NoError(t, err)
	var runs []scenarioRun
	for _, s := range conformance.Scenarios() {
		if re.MatchString(s.Name) {
			runs = append(runs, scenarioRun{Scenario: s})
		}
	}
	sts := stacks()
	t.Run("runs", func(t *testing.T) {
		for i := range runs {
			runs[i].Outcomes = make([]conformance.Outcome, len(sts))
			for j, st := range sts {
				t.Run(runs[i].Scenario.Name+"/"+st.Name, func(t *testing.T) {
					t.Parallel()
					synctest.Test(t, func(t *testing.T) {
						runs[i].Outcomes[j] = conformance.Run(runs[i].Scenario, st)
					})
				})
			}
		}
	})
	var presets []presetRun
	for _, ps := range presetStacks() {
		pr := presetRun{Stack: ps.Stack.Name}
		for _, s := range conformance.ScenariosFor(ps.Dialect) {
			if re.MatchString(s.Name) {
				pr.Scenarios = append(pr.Scenarios, s)
			}
		}
		pr.Outcomes = make([]conformance.Outcome, len(pr.Scenarios))
		presets = append(presets, pr)
	}
	t.Run("presets", func(t *testing.T) {
		for i, ps := range presetStacks() {
			for j, s := range presets[i].Scenarios {
				t.Run(ps.Stack.Name+"/"+s.Name, func(t *testing.T) {
					t.Parallel()
					synctest.Test(t, func(t *testing.T) {
						presets[i].Outcomes[j] = conformance.Run(s, ps.Stack)
					})
				})
			}
		}
	})
	var cases []conformance.MatrixCase
	for _, c := range conformance.Matrix() {
		if re.MatchString(c.Scenario.Name) {
			cases = append(cases, c)
		}
	}
	var matrix []matrixRun
	if len(cases) > 0 {
		for _, ms := range matrixStacks() {
			matrix = append(matrix, matrixRun{Stack: ms.Name, Results: conformance.RunMatrix(t, cases, ms.Build)})
		}
	}
	require.NoError(t, writeDocs(*docsFlag, runs, presets, matrix))
}
