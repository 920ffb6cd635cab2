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
	require.NoError(t, run([]string{"-n", "12"}, &out))
	s := out.String()
	assert.Contains(t, s, "12 messages through anthropic-sdk-go in")
	assert.Contains(t, s, ", 0 failed")
	assert.Contains(t, s, "96 output tokens", "8 a message, streamed or not")
}

func TestRunRejectsBadInput(t *testing.T) {
	t.Setenv("ANTHROPIC_API_KEY", "")
	for _, args := range [][]string{{"-n", "0"}, {"-live"}, {"-nosuchflag"}} {
		var out bytes.Buffer
		assert.Error(t, run(args, &out), "%v", args)
	}
}
