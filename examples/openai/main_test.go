package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunAgainstTheSimulatedProvider(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run([]string{"-n", "15"}, &out))
	assert.Contains(t, out.String(), "15 chat completions through openai-go in")
	assert.Contains(t, out.String(), ", 0 failed")
}
