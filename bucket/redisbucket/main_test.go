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
	"github.com/steadyapi/steady/bucket/redisbucket/internal/redistest"
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
const addrEnv = redistest.AddrEnv

// redisClient connects to the test server (see redistest).
func redisClient(t testing.TB) *redis.Client { return redistest.Client(t) }

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
	return redisbucket.New(rdb, append([]redisbucket.Option{redisbucket.WithTimeout(testTimeout)}, opts...)...)
}
