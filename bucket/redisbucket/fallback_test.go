package redisbucket_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
)

// logLines collects what a store logs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) log(msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprint(append([]any{msg}, args...)...))
}

func (l *logLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// With Redis unreachable, the store limits in process at its share of the
// rate, says so once, and never waits longer than its timeout for Redis.
func TestFallbackWhenRedisIsDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
	defer rdb.Close()
	var logs logLines
	s := redisbucket.New(rdb, redisbucket.Replicas(4), redisbucket.LogFunc(logs.log),
		redisbucket.Timeout(50*time.Millisecond), redisbucket.Probe(time.Hour))
	ctx := context.Background()
	shape := bucket.Shape{PerSecond: 4, Burst: 4} // a token a second locally

	start := time.Now()
	first, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the timeout, not hung")
	assert.True(t, s.Local())
	assert.True(t, first.OK)
	assert.Zero(t, first.Wait)
	assert.Zero(t, first.Rate, "the local share is not a rate for the bucket to adopt")
	second, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Second), float64(second.Wait), float64(100*time.Millisecond), "a quarter of the rate with four replicas")

	s.Cancel(ctx, "k", second)
	again, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(second.Wait), float64(again.Wait), float64(100*time.Millisecond), "the local bucket gives back too")

	s.Pause(ctx, "k", time.Now().Add(time.Minute), shape)
	paused, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Minute), float64(paused.Wait), float64(time.Second), "a pause holds locally too")

	lines := logs.get()
	require.Len(t, lines, 1, "logged once: %q", lines)
	assert.Contains(t, lines[0], "Redis unreachable")
}
