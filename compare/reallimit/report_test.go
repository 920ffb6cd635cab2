package reallimit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/compare/reallimit"
)

func TestTable(t *testing.T) {
	rows := []reallimit.Row{
		{Server: "nginx no burst", Limit: reallimit.NginxNoBurst, Stack: "s", Told: "right", Result: reallimit.Result{
			Requests: 200, Succeeded: 200, Arrivals: 204, Refused: 4, Time: 21880 * time.Millisecond, RTT: 100 * time.Millisecond,
		}},
		{Server: "express draft-7", Limit: reallimit.ExpressLimit, Stack: "s", Told: "2x", Result: reallimit.Result{
			Requests: 250, Succeeded: 240, Unfinished: 10, Arrivals: 240, Time: time.Minute,
		}},
	}
	lines := strings.Split(strings.TrimSpace(string(reallimit.Table(rows))), "\n")
	require.Len(t, lines, 4)
	assert.Equal(t, "| nginx no burst | s | right | 200 | 21.88 s | 20.00 s | 1.094 | 204 | 4 | 2.0% | 0 | 0 | 100.0 ms |", lines[2])
	assert.Equal(t, "| express draft-7 | s | 2x | 250 | 60.00 s | 20.00 s | 3.000 ✗ | 240 | 0 | 0.0% | 0 | 10 | 0.0 ms |", lines[3],
		"a run that lost requests is marked")

	doc := string(reallimit.Document(rows))
	assert.Contains(t, doc, "# steady against real rate limiters")
	assert.True(t, strings.HasSuffix(doc, string(reallimit.Table(rows))), "the page ends with the table")
}
