package conformance

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// ScenarioGoal is what a stack must achieve in a scenario (see
// [Scenarios]): no caller left waiting past its deadline, no answer after
// it, every request succeeded and every text embedded (unless MayFail),
// and at most these figures.
type ScenarioGoal struct {
	TooMany float64 // the most 429s, as a share of arrivals
	// Ratio is the most time against the oracle's; 0 grades none. A goal
	// of time is missed by a run whose oracle's time is 0.
	Ratio float64
	// MayFail lets the requests the oracle cannot serve fail (fast, as
	// under a deadline the server will not meet); those it serves
	// ([Outcome.Servable]) must still succeed.
	MayFail bool
}

// Misses says what o misses of g, one line each; nil when o meets it.
func (g ScenarioGoal) Misses(o Outcome) []string {
	var m []string
	if o.Hung != 0 {
		m = append(m, fmt.Sprintf("%d callers waited past their deadline or the horizon", o.Hung))
	}
	if o.MaxLate != 0 {
		m = append(m, fmt.Sprintf("an answer came %v after its deadline", o.MaxLate))
	}
	if !g.MayFail && (o.Succeeded != o.Requests || o.Embedded != o.Texts) {
		m = append(m, fmt.Sprintf("%d of %d requests succeeded, %d of %d texts embedded: every one must",
			o.Succeeded, o.Requests, o.Embedded, o.Texts))
	}
	if g.MayFail && o.Succeeded < o.Servable {
		m = append(m, fmt.Sprintf("%d of %d requests succeeded; the oracle gets %d through", o.Succeeded, o.Requests, o.Servable))
	}
	if s := o.TooManyShare(); s > g.TooMany {
		m = append(m, fmt.Sprintf("429s were %s of arrivals, the goal at most %s", FormatShare(s), FormatShare(g.TooMany)))
	}
	switch {
	case g.Ratio > 0 && o.Least <= 0:
		m = append(m, "the oracle's time is 0: a time goal with nothing to grade against")
	case g.Ratio > 0 && o.Ratio() > g.Ratio:
		m = append(m, fmt.Sprintf("%.3f of the oracle's time, the goal at most %.2f", o.Ratio(), g.Ratio))
	}
	return m
}

// Grade logs o's figures and reports through t what o misses of g.
func (g ScenarioGoal) Grade(t testing.TB, o Outcome) {
	t.Helper()
	t.Logf("requests %d, succeeded %d, failed %d, hung %d, arrivals %d, 429s %d (%.2f%%), 5xx %d, wall %v, oracle %v (×%.3f), max late %v",
		o.Requests, o.Succeeded, o.Failed, o.Hung, o.Arrivals, o.TooMany, 100*o.TooManyShare(), o.ServerErrors,
		o.Wall.Round(time.Millisecond), o.Least.Round(time.Millisecond), o.Ratio(), o.MaxLate)
	for _, m := range g.Misses(o) {
		t.Error(m)
	}
}

// MatrixMisses says which of results miss their case's goal, one line
// each. A run named in shortfalls, by its case's name and what it was told
// ("sliding/nothing": the case's name, a slash, [Told.String]), is a known
// shortfall, held to the looser goal given there instead, so that it
// cannot grow unseen.
func MatrixMisses(results []MatrixResult, shortfalls map[string]Goal) []string {
	var m []string
	for _, r := range results {
		o, g, what := r.Outcome, r.Case.Goal, ""
		if sf, ok := shortfalls[r.Case.Name+"/"+r.Told.String()]; ok {
			g, what = sf, " (a known shortfall's bound)"
		}
		if !o.Complete() || o.Ratio() > g.Ratio || o.TooManyShare() > g.TooMany {
			m = append(m, fmt.Sprintf("%s, told %s: %.3f of the oracle, %s 429s, %d failed; the goal%s %s",
				r.Case.Name, r.Told, o.Ratio(), FormatShare(o.TooManyShare()), r.Failed(), what, g))
		}
	}
	return m
}

// HoldMatrix logs results as a table ([WriteMatrixTable]) and reports
// through t every run [MatrixMisses] names.
func HoldMatrix(t testing.TB, results []MatrixResult, shortfalls map[string]Goal) {
	t.Helper()
	var table strings.Builder
	_ = WriteMatrixTable(&table, results)
	t.Log("\n" + table.String())
	for _, m := range MatrixMisses(results, shortfalls) {
		t.Error(m)
	}
}
