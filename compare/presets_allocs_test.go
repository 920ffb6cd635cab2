package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxPresetAllocs is the most allocations a preset may add to a bare round
// trip of BenchmarkPresets' request (the goal was 5; this is what they add
// today): the copy of the request a key is added to, made with the Info
// read of it, and its header map (the map and its first slots). A request
// that carries its own key is sent on as it is, with an Info the preset
// reuses: maxOwnKeyAllocs. (Under the race detector, sync.Pool drops one
// Info put back in four, and a quarter of an allocation rounds to none.)
const (
	maxPresetAllocs = 3
	maxOwnKeyAllocs = 0
)

// TestPresetAllocations holds every preset of BenchmarkPresets, with its
// key and with the caller's own, to maxPresetAllocs and maxOwnKeyAllocs
// allocations over the bare round trip. (A body whose end was not seen
// before allocates a copy of its end once in 16, which rounds to none.)
func TestPresetAllocations(t *testing.T) {
	cases := presetCases()
	allocs := func(c presetCase) float64 {
		req, body, cur := c.request(t)
		next := 0
		return testing.AllocsPerRun(200, func() {
			if c.bodies != nil {
				*cur = c.bodies[next%len(c.bodies)]
				next++
			}
			body.Reset(*cur)
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
		if strings.HasPrefix(c.name, "failsafe-go") || strings.HasPrefix(c.name, "parts/") {
			continue
		}
		presets++
		most := maxPresetAllocs
		if strings.Contains(c.name, "/own-key") {
			most = maxOwnKeyAllocs
		}
		assert.LessOrEqual(t, allocs(c)-bare, float64(most), c.name)
	}
	assert.Equal(t, 7, presets, "three presets, each with its key and with the caller's, and Together's with new tails")
}
