package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAgainstTheSimulatedProvider(t *testing.T) {
	var out, errOut bytes.Buffer
	// 120 texts in 6 requests at 1,200 a minute: well under a second, so
	// no query (one every 2 s) goes.
	err := run([]string{"-quiet", "-n", "120", "-tier", "1200", "-rate", "1200", "-latency", "10ms"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	s := out.String()
	assert.Contains(t, s, "texts      120 embedded of 120")
	assert.Contains(t, s, "requests   6 logical, 6 sent, 0 answered 429")
	assert.Contains(t, s, "requests/min achieved against a limit of 1200")
}

func TestRunEmbedsTheLinesOfFiles(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(name, []byte("first\n\n  second  \nthird\n"), 0o600))
	var out, errOut bytes.Buffer
	require.NoError(t, run([]string{"-quiet", "-tier", "600", "-latency", "1ms", name}, &out, &errOut), errOut.String())
	assert.Contains(t, out.String(), "texts      3 embedded of 3")
}

func TestRunRejectsBadInput(t *testing.T) {
	for _, args := range [][]string{
		{"-n", "0"},
		{"-tier", "-5"},
		{"-batch", "0"},
		{"-live"}, // no TOGETHER_API_KEY
		{filepath.Join(t.TempDir(), "missing.txt")},
		{"-nosuchflag"},
	} {
		t.Setenv("TOGETHER_API_KEY", "")
		var out, errOut bytes.Buffer
		assert.Error(t, run(append([]string{"-quiet"}, args...), &out, &errOut), "%v", args)
	}
}

func TestRunServesQueriesWhileTheCorpusRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	// 60 requests at 600 a minute, about 5 s; a query every 500 ms.
	err := run([]string{"-quiet", "-n", "1200", "-tier", "600", "-rate", "600", "-latency", "10ms", "-queries", "500ms"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	s := out.String()
	assert.Contains(t, s, "texts      1200 embedded of 1200")
	assert.Contains(t, s, "requests   60 logical, 60 sent, 0 answered 429")
	assert.Regexp(t, `queries    \d+ embedded while the corpus ran, at interactive priority`, s)
}

// A corpus that fits in the provider's first burst has no least possible
// time to measure against: the report says so rather than dividing by
// zero.
func TestRunReportsACorpusWithinTheFirstBurst(t *testing.T) {
	var out, errOut bytes.Buffer
	// 2 requests where the provider allows a burst of 20.
	err := run([]string{"-quiet", "-n", "40", "-tier", "1200", "-rate", "1200", "-latency", "1ms", "-queries", "0"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	s := out.String()
	assert.Contains(t, s, "texts      40 embedded of 40")
	assert.Contains(t, s, "(least possible 0s: every request fits in the first burst)")
	assert.NotContains(t, s, "% over")
}

// The rate achieved counts the requests the provider accepted: a run that
// sent nothing (an unknown model) achieved no rate at all.
func TestRunReportsNoRateWhenNothingWasSent(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run([]string{"-quiet", "-n", "40", "-model", "BAAI/bge-large-en-v1", "-latency", "1ms", "-queries", "0"}, &out, &errOut)
	require.Error(t, err)
	s := out.String()
	assert.Contains(t, s, "texts      0 embedded of 40")
	assert.Contains(t, s, "requests   2 logical, 0 sent")
	assert.Contains(t, s, "rate       0 requests/min achieved against a limit of 300 (0%)")
}

// The progress line's rate is the texts embedded over the time the run has
// taken, shown once the run has gone long enough for it to mean something
// (2 s, minRateSpan): whatever the run's pace, no rate shown is above the
// corpus over that span, here 120 texts / 2 s. The bar's own rate showed
// millions of texts a second: the first burst's 20 texts over the
// microseconds since the bar's first update.
func TestProgressShowsNoRateOfTheFirstBurst(t *testing.T) {
	var out, errOut bytes.Buffer
	// 6 requests where the provider allows a burst of 20.
	err := run([]string{"-n", "120", "-tier", "1200", "-rate", "1200", "-latency", "1ms", "-queries", "0"}, &out, &errOut)
	require.NoError(t, err, errOut.String())
	require.Contains(t, out.String(), "texts      120 embedded of 120")
	bar := errOut.String()
	require.Contains(t, bar, "/120", "the bar was drawn")
	for _, m := range regexp.MustCompile(`(\d+) texts/s`).FindAllStringSubmatch(bar, -1) {
		rate, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		assert.LessOrEqual(t, rate, 120/2, "a rate shown: %q", m[0])
	}
}

// The rate shown is the texts done over the whole run so far, from
// minRateSpan on, with the time left at that rate.
func TestProgressLabelGivesTheRateOfTheRunSoFar(t *testing.T) {
	assert.Equal(t, "embedding", progressLabel(0, 2000, 0))
	assert.Equal(t, "embedding", progressLabel(100, 2000, 4*time.Microsecond), "the first burst: no rate")
	assert.Equal(t, "embedding", progressLabel(180, 2000, minRateSpan-time.Millisecond))
	assert.Equal(t, "embedding", progressLabel(0, 2000, time.Minute), "nothing done: no rate")
	assert.Equal(t, "embedding, 90 texts/s so far, about 20s left", progressLabel(180, 2000, 2*time.Second))
	assert.Equal(t, "embedding, 100 texts/s so far, about 0s left", progressLabel(2000, 2000, 20*time.Second))
}
