package conformance

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteTable(t *testing.T) {
	outcomes := []Outcome{
		{
			Stack: "fast", Requests: 100, Succeeded: 100, Arrivals: 120, Accepted: 100, TooMany: 20,
			Wall: 10 * time.Second, Least: 9 * time.Second,
		},
		{
			Stack: "stuck", Requests: 100, Succeeded: 40, Failed: 10, Hung: 50, Arrivals: 60, Accepted: 40, ServerErrors: 3,
			Wall: 2 * time.Hour, Least: 9 * time.Second,
		},
	}
	var b strings.Builder
	require.NoError(t, WriteTable(&b, outcomes))
	want := `| stack | requests | succeeded | failed | hung | arrivals | 429s | 5xx | wall | oracle | × oracle | 429 share |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| fast | 100 | 100 | 0 | 0 | 120 | 20 | 0 | 10s | 9s | 1.11 | 17% |
| stuck | 100 | 40 | 10 | 50 | 60 | 0 | 3 | 2h0m0s ✗ | 9s | 800.00 | 0% |
`
	assert.Equal(t, want, b.String())
}

func TestWriteTableJobAndDeadlines(t *testing.T) {
	outcomes := []Outcome{
		{Stack: "job", Requests: 5, Succeeded: 5, Texts: 100, Embedded: 100, Least: time.Second, Arrivals: 6, TooMany: 1, Accepted: 5, Wall: time.Second},
		{Stack: "late", Requests: 2, Hung: 2, Deadlines: true, MaxLate: 3500 * time.Millisecond, JobErr: errors.New("x")},
	}
	var b strings.Builder
	require.NoError(t, WriteTable(&b, outcomes))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "| stack | requests | succeeded | failed | hung | texts embedded | arrivals | 429s | 5xx | wall | oracle | × oracle | 429 share | max late |", lines[0])
	assert.Equal(t, "| job | 5 | 5 | 0 | 0 | 100 / 100 | 6 | 1 | 0 | 1s | 1s | 1.00 | 17% | — |", lines[2])
	assert.Equal(t, "| late | 2 | 0 | 0 | 2 | 0 / 0 | 0 | 0 | 0 | 0s ✗ | 0s | — | 0% | 3.5s |", lines[3])
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{1234 * time.Millisecond, "1.2s"},
		{59940 * time.Millisecond, "59.9s"},
		{61500 * time.Millisecond, "1m2s"},
		{2*time.Hour + 400*time.Millisecond, "2h0m0s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FormatDuration(tt.d), "%v", tt.d)
	}
}

func TestPerSecond(t *testing.T) {
	adm := []Admission{
		{At: 0, Weight: 1}, {At: 500 * time.Millisecond, Weight: 1}, {At: 1999 * time.Millisecond, Weight: 0.5},
		{At: 2 * time.Second, Weight: 1}, {At: 9 * time.Second, Weight: 1}, // past the end: left out
	}
	tests := []struct {
		name     string
		bin, end time.Duration
		want     []float64
	}{
		{"one-second bins", time.Second, 3 * time.Second, []float64{2, 0.5, 1}},
		{"two-second bins average", 2 * time.Second, 4 * time.Second, []float64{1.25, 0.5}},
		{"a partial last bin", 2 * time.Second, 3 * time.Second, []float64{1.25, 0.5}},
		{"nothing to bin", 0, time.Second, nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, PerSecond(adm, tt.bin, tt.end), tt.name)
	}
}

func TestOutcomeMeasures(t *testing.T) {
	tests := []struct {
		name     string
		o        Outcome
		ratio    float64
		tooMany  float64
		complete bool
	}{
		{"done in the oracle's time", Outcome{Requests: 10, Succeeded: 10, Wall: time.Second, Least: time.Second, Arrivals: 10, Accepted: 10}, 1, 0, true},
		{"twice as slow, a 429 in five", Outcome{Requests: 10, Succeeded: 10, Wall: 2 * time.Second, Least: time.Second, Arrivals: 15, TooMany: 3, Accepted: 10}, 2, 0.2, true},
		{"no limit to measure against", Outcome{Requests: 10, Succeeded: 9}, 0, 0, false},
		{"a job with texts left", Outcome{Texts: 100, Embedded: 80, Least: time.Second, Wall: time.Second}, 1, 0, false},
		{"a job that failed at the end", Outcome{Texts: 100, Embedded: 100, JobErr: errors.New("x")}, 0, 0, false},
	}
	for _, tt := range tests {
		assert.InDelta(t, tt.ratio, tt.o.Ratio(), 1e-9, tt.name)
		assert.InDelta(t, tt.tooMany, tt.o.TooManyShare(), 1e-9, tt.name)
		assert.Equal(t, tt.complete, tt.o.Complete(), tt.name)
	}
}

func TestFormatShare(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0%", 0.0001: "0.01%", 0.00004: "0.01%", 0.0033: "0.33%", 0.014: "1.4%", 0.05: "5%", 0.123: "12%", 1: "100%",
	} {
		assert.Equal(t, want, FormatShare(f), "%v", f)
	}
}

func ExampleWriteTable() {
	_ = WriteTable(os.Stdout, []Outcome{{
		Stack: "steady", Requests: 3000, Succeeded: 3000, Arrivals: 3012, TooMany: 12, Accepted: 3000,
		Wall: 300 * time.Second, Least: 299 * time.Second,
	}})
	// Output:
	// | stack | requests | succeeded | failed | hung | arrivals | 429s | 5xx | wall | oracle | × oracle | 429 share |
	// | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
	// | steady | 3000 | 3000 | 0 | 0 | 3012 | 12 | 0 | 5m0s | 4m59s | 1.00 | 0.4% |
}
