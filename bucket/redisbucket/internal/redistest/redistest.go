// Package redistest connects tests to the Redis server they run against,
// with one rule for every package: the server is named by the environment
// variable STEADY_REDIS_ADDR (host:port); without one that answers, a test
// skips, except in CI (CI set), which starts a server, where it fails.
package redistest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// AddrEnv names the environment variable that holds the test server's
// address, host:port.
const AddrEnv = "STEADY_REDIS_ADDR"

// Client returns a client of the test server, closed when t ends. With no
// server that answers a ping within 2 s it skips t, or, when the CI
// environment variable is set, fails it.
func Client(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(AddrEnv)
	why := AddrEnv + " is not set"
	if addr != "" {
		c := redis.NewClient(&redis.Options{Addr: addr})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		c.Close()
		why = fmt.Sprintf("Redis at %s (%s) does not answer: %v", addr, AddrEnv, err)
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test needs a redis-server in CI: %s", why)
	}
	t.Skipf("no Redis: %s", why)
	return nil
}
