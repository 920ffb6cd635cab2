package redisbucket_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/steadyapi/steady/bucket/redisbucket"
)

func TestMain(m *testing.M) {
	if child := os.Getenv(childEnv); child != "" {
		os.Exit(runChild())
	}
	// go-redis logs each failed dial through its package logger; the
	// tests that kill Redis make many, and the store says what matters.
	redis.SetLogger(quiet{})
	goleak.VerifyTestMain(m)
}

// addrEnv names the Redis server the tests use, host:port.
const addrEnv = "STEADY_REDIS_ADDR"

// redisClient connects to the test server named by STEADY_REDIS_ADDR. With
// no server, the test skips; in CI (CI set) it fails, since CI starts one.
func redisClient(t testing.TB) *redis.Client {
	t.Helper()
	addr := os.Getenv(addrEnv)
	why := addrEnv + " is not set"
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
		why = fmt.Sprintf("Redis at %s (%s) does not answer: %v", addr, addrEnv, err)
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("redisbucket: these tests need a redis-server in CI: %s", why)
	}
	t.Skipf("no Redis: %s", why)
	return nil
}

// testKey is a key no other test or run uses.
func testKey(t testing.TB) string {
	return fmt.Sprintf("%s:%d", t.Name(), time.Now().UnixNano())
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// testTimeout bounds each Redis call of the tests' stores that are not
// about Redis failing: far above a local Redis's latency, so that a machine
// busy with other tests does not make a slow answer pass for an outage.
const testTimeout = 2 * time.Second

// newStore is redisbucket.New with testTimeout, before opts.
func newStore(rdb redis.UniversalClient, opts ...redisbucket.Option) *redisbucket.Store {
	return redisbucket.New(rdb, append([]redisbucket.Option{redisbucket.Timeout(testTimeout)}, opts...)...)
}
