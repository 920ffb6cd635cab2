package redisbucket_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/conformance"
)

// ownRedis starts a redis-server of the test's own on a free loopback
// port, so that killing it touches no other test. It needs the server that
// STEADY_REDIS_ADDR names too (the same skip and fail rule), and the
// redis-server binary on PATH.
func ownRedis(t *testing.T) (addr string, cmd *exec.Cmd) {
	t.Helper()
	redisClient(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redisbucket: CI needs redis-server on PATH: %v", err)
		}
		t.Skipf("no redis-server binary: %v", err)
	}
	addr = deadAddr(t)
	_, port, _ := strings.Cut(addr, ":")
	cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		require.Less(t, i, 100, "redis-server on %s did not start", addr)
		time.Sleep(20 * time.Millisecond)
	}
	return addr, cmd
}

// Redis killed mid-run: every call still ends (answered or refused with an
// error, none lost), each replica limits itself in process at a quarter of
// the rate (four replicas), logs it once, and goes back to Redis when a
// new server answers on the same address.
func TestRedisKilledMidRun(t *testing.T) {
	addr, cmd := ownRedis(t)
	sim := simulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	key := testKey(t)

	var logBuf bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logBuf, mu: &logMu}, nil))
	const (
		killAt    = 3 * time.Second
		restartAt = 5 * time.Second
		// After the restart, go-redis redials a pool that failed to dial
		// about once a second, and the store probes every second.
		run = 10 * time.Second
	)
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var got tally
	var wg sync.WaitGroup
	reps := make([]*replica, replicas)
	for i := range reps {
		reps[i] = newReplica(addr, key, redisbucket.WithLogger(logger.With("replica", i)),
			redisbucket.WithTimeout(300*time.Millisecond), redisbucket.WithProbe(time.Second))
		defer reps[i].close()
		wg.Go(func() { drive(ctx, reps[i].client, srv.URL, 8, 5*time.Second, &got) })
	}

	start := time.Now()
	time.Sleep(killAt)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	killed := time.Since(start)
	time.Sleep(restartAt - killAt)
	_, port, _ := strings.Cut(addr, ":")
	again := exec.Command(cmd.Path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	require.NoError(t, again.Start())
	defer func() { _ = again.Process.Kill(); _ = again.Wait() }()
	restarted := time.Since(start)
	wg.Wait()

	logMu.Lock()
	logs := logBuf.String()
	logMu.Unlock()
	t.Logf("killed at %v, restarted at %v\n%s", killed.Round(time.Millisecond), restarted.Round(time.Millisecond), logs)
	t.Logf("callers: %s", &got)

	assert.Equal(t, got.calls.Load(), got.ok.Load()+got.tooMany.Load()+got.other.Load()+got.errs.Load(), "every call ended, none lost")
	for i := range replicas {
		// Once each: a busy machine may make a call slow enough to count
		// as a second, short outage, logged as one too.
		down := strings.Count(logs, fmt.Sprintf(`Redis unreachable; limiting in process" replica=%d `, i))
		back := strings.Count(logs, fmt.Sprintf(`Redis answers again; limits are shared again" replica=%d`, i))
		assert.GreaterOrEqual(t, down, 1, "replica %d logs the outage", i)
		assert.Equal(t, down, back, "replica %d logs each outage once and each return once", i)
	}
	for i, r := range reps {
		assert.False(t, r.store.Local(), "replica %d is back on Redis", i)
		assert.InDelta(t, limitRPS, r.bucket.Rate().PerSecond(), 1e-9, "replica %d: the local share is not taken for the key's rate", i)
	}

	// While Redis was down, the replicas together stayed within the limit:
	// each at a quarter of it.
	var down []conformance.Arrival
	for _, a := range sim.Arrivals() {
		if a.At > killed && a.At < restarted {
			down = append(down, a)
		}
	}
	span := (restarted - killed).Seconds()
	t.Logf("while Redis was down: %d arrivals in %.1fs (limit %d/s)", len(down), span, limitRPS)
	assert.LessOrEqual(t, float64(len(down)), limitRPS*span+limitRPS, "limited locally, not unlimited")
	assert.GreaterOrEqual(t, float64(len(down)), 0.5*limitRPS*span, "still sending: each replica at its share")
	checkServer(t, sim)
}

// lockedWriter serialises the log handler's writes with the test's reads.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
