package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/steadyapi/steady/conformance"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParse(t *testing.T) {
	cfg, addr, err := parse([]string{"-addr", ":9", "-chat-rpm", "60", "-embeddings-rpm", "0", "-window", "1m",
		"-headers", "every,retry-after", "-seed", "7", "-overload", "0.1"})
	require.NoError(t, err)
	assert.Equal(t, ":9", addr)
	assert.Equal(t, int64(7), cfg.Seed)
	assert.Equal(t, conformance.Limit{RPM: 60, Window: time.Minute}, cfg.Limits[conformance.Chat])
	assert.NotContains(t, cfg.Limits, conformance.Embeddings, "0 is unlimited")
	assert.Equal(t, conformance.HeaderEveryAnswer|conformance.HeaderRetryAfter, cfg.Headers)
	require.Len(t, cfg.Faults, 1)
	assert.Equal(t, 0.1, cfg.Faults[0].Share)

	cfg, _, err = parse([]string{"-chat-rpm", "600", "-embeddings-rpm", "0", "-images-rpm", "0", "-algorithm", "fixed", "-window", "10s", "-from-first",
		"-headers", "none,retry-after,draft-8,legacy,draft-6,draft-7"})
	require.NoError(t, err)
	assert.Equal(t, conformance.Limit{RPM: 600, Algorithm: conformance.FixedWindow, Window: 10 * time.Second, FromFirstRequest: true},
		cfg.Limits[conformance.Chat])
	assert.Equal(t, conformance.HeaderNoReset|conformance.HeaderRetryAfter|conformance.HeaderDraft8|conformance.HeaderLegacy|
		conformance.HeaderDraft6|conformance.HeaderDraft7, cfg.Headers)
	cfg, _, err = parse([]string{"-algorithm", "nginx", "-burst", "1", "-dynamic", "-span", "in-use"})
	require.NoError(t, err)
	assert.Equal(t, conformance.Limit{RPM: 600, Algorithm: conformance.LeakyBucket, Window: time.Second, Burst: 1,
		Dynamic: true, Span: conformance.SpanInUse}, cfg.Limits[conformance.Chat])

	for _, bad := range [][]string{{"-window", "5s"}, {"-headers", "weird"}, {"-overload", "2"}, {"-nope"},
		{"-algorithm", "magic"}, {"-algorithm", "sliding", "-window", "0s"}, {"-burst", "-1"}, {"-span", "day"},
		// Not "unlimited": refused.
		{"-chat-rpm", "-5"}, {"-chat-rpm", "NaN"}, {"-embeddings-rpm", "-1"}, {"-images-rpm", "NaN"}, {"-tpm", "-100"},
		{"-chat-rpm", "Inf"}, {"-burst", "NaN"}, {"-base", "-60"}, {"-cap", "NaN"}, {"-overload", "NaN"},
		{"-latency", "-1s"}, {"-jitter", "-1ms"}, {"-stream-interval", "-1s"}} {
		_, _, err := parse(bad)
		assert.Error(t, err, bad)
	}
}

// syncWriter hands run's output to the test line by line.
type syncWriter chan string

func (w syncWriter) Write(p []byte) (int, error) { w <- string(p); return len(p), nil }

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := make(syncWriter, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-chat-rpm", "1"}, out) }()
	line := <-out
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "provider listening on ")
	require.True(t, ok, line)

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	statuses := []int{}
	for range 2 {
		resp, err := client.Post(url+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[]}`))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
		require.NoError(t, resp.Body.Close())
		statuses = append(statuses, resp.StatusCode)
	}
	assert.Equal(t, []int{http.StatusOK, http.StatusTooManyRequests}, statuses, "1 RPM: a pair is one too many")
	cancel()
	assert.NoError(t, <-done, "a graceful shutdown")
}
