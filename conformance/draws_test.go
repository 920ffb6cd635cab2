package conformance

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The draws are uniform, and independent across passes, salts and seeds:
// what the fault shares and the latency jitter rely on.
func TestDrawsUniformAndIndependent(t *testing.T) {
	const n = 100000
	var bins [10]int
	bothPasses, bothSalts, bothSeeds, bothNeighbours := 0, 0, 0, 0
	prev := 1.0
	for i := range n {
		// Bodies that differ in a digit or two, as a workload's do.
		id := requestIdentity("POST", "/v1/chat/completions", fnv1a("Request "+strconv.Itoa(i)+": say hello."))
		first, second := newDraws(1, id, 1), newDraws(1, id, 2)
		u := first.float(saltFault)
		if u < 0.1 && prev < 0.1 {
			bothNeighbours++
		}
		prev = u
		assert.True(t, u >= 0 && u < 1, "in [0, 1): %v", u)
		bins[int(u*10)]++
		if u < 0.1 && second.float(saltFault) < 0.1 {
			bothPasses++
		}
		if u < 0.1 && first.float(saltFault+1) < 0.1 {
			bothSalts++
		}
		if u < 0.1 && newDraws(2, id, 1).float(saltFault) < 0.1 {
			bothSeeds++
		}
		if j := first.int64n(saltLatency, 7); j < 0 || j >= 7 {
			assert.Fail(t, "int64n out of [0, 7)", "%d", j)
		}
	}
	// Five standard deviations of a binomial count either way.
	for b, c := range bins {
		assert.InDelta(t, n/10, c, 500, "tenth %d", b)
	}
	assert.InDelta(t, n/100, bothPasses, 160, "two passes of one request: 0.1 × 0.1")
	assert.InDelta(t, n/100, bothSalts, 160, "two faults of one pass: 0.1 × 0.1")
	assert.InDelta(t, n/100, bothSeeds, 160, "two seeds: 0.1 × 0.1")
	assert.InDelta(t, n/100, bothNeighbours, 160, "requests i and i+1: 0.1 × 0.1")
}

// A request's identity is its method, path and body: each tells it apart.
func TestRequestIdentity(t *testing.T) {
	body := fnv1a([]byte(`{"model":"m"}`))
	id := requestIdentity("POST", "/v1/chat/completions", body)
	assert.Equal(t, id, requestIdentity("POST", "/v1/chat/completions", body), "the same request")
	assert.NotEqual(t, id, requestIdentity("GET", "/v1/chat/completions", body), "another method")
	assert.NotEqual(t, id, requestIdentity("POST", "/v1/completions", body), "another path")
	assert.NotEqual(t, id, requestIdentity("POST", "/v1/chat/completions", fnv1a([]byte(`{"model":"n"}`))), "another body")
	assert.Equal(t, fnv1a([]byte("abc")), fnv1a("abc"), "strings and bytes hash alike")
}
