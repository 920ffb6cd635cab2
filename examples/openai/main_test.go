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
	s := out.String()
	assert.Contains(t, s, "15 chat completions through openai-go in")
	assert.Contains(t, s, ", 0 failed")
	assert.Contains(t, s, "the limit learnt from the first answer: 600 requests a minute")
	assert.Contains(t, s, "out of quota: 429 insufficient_quota after")
}

func TestRunRejectsBadInput(t *testing.T) {
	t.Setenv("OPENAI_API_KEY", "")
	for _, args := range [][]string{{"-n", "0"}, {"-live"}, {"-nosuchflag"}} {
		var out bytes.Buffer
		assert.Error(t, run(args, &out), "%v", args)
	}
}
