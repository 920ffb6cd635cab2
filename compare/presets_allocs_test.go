package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxPresetAllocs is the most allocations a preset may add to a bare round
// trip of BenchmarkPresets' request (issue 14's goal): the inspected
// request and its context, the header map a key is added in, and the
// breaker's report.
const maxPresetAllocs = 5

// TestPresetAllocations holds every preset of BenchmarkPresets, with its
// key and with the caller's own, to maxPresetAllocs allocations over the
// bare round trip.
func TestPresetAllocations(t *testing.T) {
	cases := presetCases()
	allocs := func(c presetCase) float64 {
		req, body := c.request(t)
		return testing.AllocsPerRun(200, func() {
			body.Reset(c.body)
			req.Body = body
			resp, err := c.rt.RoundTrip(req)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			_ = resp.Body.Close()
		})
	}
	require.Equal(t, "bare", cases[0].name)
	bare := allocs(cases[0])
	presets := 0
	for _, c := range cases[1:] {
		if c.name == "failsafe-go" || strings.HasPrefix(c.name, "parts/") {
			continue
		}
		presets++
		assert.LessOrEqual(t, allocs(c)-bare, float64(maxPresetAllocs), c.name)
	}
	assert.Equal(t, 6, presets, "three presets, each with its key and with the caller's")
}
