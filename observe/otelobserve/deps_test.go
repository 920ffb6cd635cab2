package otelobserve_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOnlyTheAdapterLinksOpenTelemetry holds the rule that a program
// using steady without this package does not link OpenTelemetry, nor
// either adapter.
func TestOnlyTheAdapterLinksOpenTelemetry(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps",
		"github.com/steadyapi/steady/transport",
		"github.com/steadyapi/steady/retry",
		"github.com/steadyapi/steady/bucket",
		"github.com/steadyapi/steady/breaker",
		"github.com/steadyapi/steady/together",
	).Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/steadyapi/steady/together")
	for _, d := range deps {
		assert.False(t, strings.HasPrefix(d, "go.opentelemetry.io/"), "%s is linked", d)
		assert.False(t, strings.HasPrefix(d, "github.com/steadyapi/steady/observe/"), "%s is linked", d)
	}
}
