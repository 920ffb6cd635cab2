package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/steadyapi/steady/conformance"
)

// matrixRun is the model matrix run by one stack.
type matrixRun struct {
	Stack   string
	Results []conformance.MatrixResult // conformance.RunMatrix's order
}

// matrixPlots are the cases whose rate over time is plotted, at the
// tellings plotted: Together's dynamic limit under both spans, and the
// strict per-second bucket without burst, each told the right limit and
// told nothing.
var matrixPlots = struct {
	cases    []string
	tellings []float64
}{
	cases:    []string{"dynamic-hour", "dynamic-in-use", "nginx-no-burst"},
	tellings: []float64{1, 0},
}

// matrixPlotName is the file name of a case's plot at one telling.
func matrixPlotName(c conformance.MatrixCase, told conformance.Told) string {
	suffix := "told-nothing"
	if told.Known() {
		suffix = fmt.Sprintf("told-%gx", told.Factor)
	}
	return "comparison-matrix-" + c.Name + "-" + suffix + ".png"
}

// matrixCell is one stack's run as a cell of the combined table: time
// against the oracle's, 429 share, failures, and ✗ when the goal is missed.
func matrixCell(r conformance.MatrixResult) string {
	return figures(r.Outcome, r.Failed(), r.Met())
}

// writeHead writes a Markdown table's head: its columns, and the line
// under them.
func writeHead(b *bytes.Buffer, head []string) {
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString(" --- |")
	}
	b.WriteString("\n")
}

// figures is a run's cell in a table of runs: its time against the
// oracle's, to three places (a goal missed by a hair shows), its share of
// 429s, the requests that failed, and ✗ when it missed its goal.
func figures(o conformance.Outcome, failed int, met bool) string {
	cell := fmt.Sprintf("%.3f · %s", o.Ratio(), conformance.FormatShare(o.TooManyShare()))
	if failed > 0 {
		cell += fmt.Sprintf(" · %d failed", failed)
	}
	if !met {
		cell += " ✗"
	}
	return cell
}

// matrixMarkdown renders the matrix section of the comparison: what the
// matrix is, a table of every stack side by side, each stack's count of
// goals met, the plots, and each stack's own table.
func matrixMarkdown(runs []matrixRun) ([]byte, error) {
	var b bytes.Buffer
	if len(runs) == 0 || len(runs[0].Results) == 0 {
		return nil, nil
	}
	b.WriteString(`
## The model matrix

The servers a rate controller is graded on (` + "`conformance.Matrix`" + `): Together's dynamic
limit under both readings of its documentation (the limit is twice the successful
rate over the past hour, or over the minutes the key has been in use), per-second
buckets with and without burst (the strict one is nginx's ` + "`limit_req`" + ` with no burst,
counted in whole milliseconds as nginx counts), a sliding 60 s log, fixed 10 s
windows started by a key's first request with each header form of
express-rate-limit, one-minute windows on the clock, and token limits that bind
before the request limit; the per-second bucket and the one-minute windows again
with every header dialect. Each stack is built afresh for each run from what the
run tells it: the right limit, twice the limit, or nothing (steady's limiter then
finds the rate; failsafe-go runs without its rate limiter, which needs one;
go-retryablehttp takes none). 64 callers send the requests in a closed loop,
answered in 100 to 300 ms.

Each cell is the time against the oracle's (a client that knows the server's
state and sends each request at the first instant it would be admitted, from the
same 64 callers, each held until its answer comes: its limit grows under
Together's dynamic limit because it uses it), the share of arrivals
answered 429, and the requests that failed; ✗ marks a run that misses the case's
goal (every request succeeds, within both figures of the *goal* column).

`)
	head := []string{"server", "told", "goal"}
	for _, r := range runs {
		head = append(head, r.Stack)
	}
	writeHead(&b, head)
	met := make([]int, len(runs))
	for i, first := range runs[0].Results {
		row := []string{first.Case.Title, first.Told.String(), first.Case.Goal.String()}
		for j, r := range runs {
			res := r.Results[i]
			row = append(row, matrixCell(res))
			if res.Met() {
				met[j]++
			}
		}
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\nGoals met:")
	for j, r := range runs {
		sep := ","
		if j == len(runs)-1 {
			sep = "."
		}
		fmt.Fprintf(&b, " %s %d of %d%s", r.Stack, met[j], len(r.Results), sep)
	}
	b.WriteString("\n\nThe rate over time of the stacks against the dynamic limit and the strict bucket,\nwith the oracle's, dashed:\n\n")
	for _, res := range runs[0].Results {
		if plotted(res) {
			fmt.Fprintf(&b, "![%s, told %s](%s)\n", res.Case.Title, res.Told, matrixPlotName(res.Case, res.Told))
		}
	}
	for _, r := range runs {
		fmt.Fprintf(&b, "\n<details><summary>%s, run by run</summary>\n\n", r.Stack)
		if err := conformance.WriteMatrixTable(&b, r.Results); err != nil {
			return nil, err
		}
		b.WriteString("\n</details>\n")
	}
	return b.Bytes(), nil
}

// plotted reports whether a run's case and telling are plotted.
func plotted(r conformance.MatrixResult) bool {
	for _, name := range matrixPlots.cases {
		for _, f := range matrixPlots.tellings {
			if r.Case.Name == name && r.Told.Factor == f {
				return true
			}
		}
	}
	return false
}

// writeMatrixPlots draws the plotted cases, one plot per case and telling
// with every stack's line.
func writeMatrixPlots(dir string, runs []matrixRun) error {
	if len(runs) == 0 {
		return nil
	}
	for i, first := range runs[0].Results {
		if !plotted(first) {
			continue
		}
		s := first.Case.Scenario
		s.Title = first.Case.Title + ", told " + first.Told.String()
		outs := make([]conformance.Outcome, len(runs))
		for j, r := range runs {
			outs[j] = r.Results[i].Outcome
		}
		if err := writePlot(filepath.Join(dir, matrixPlotName(first.Case, first.Told)), s, outs); err != nil {
			return err
		}
	}
	return nil
}
