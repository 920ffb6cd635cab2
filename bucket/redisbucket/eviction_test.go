package redisbucket_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
)

// setConfig sets a Redis setting for the test and restores it after. The
// memory limits set here are far above what the tests use, so that
// nothing is evicted meanwhile: only the policy is in question.
func setConfig(t *testing.T, rdb *redis.Client, name, value string) {
	ctx := context.Background()
	was, err := rdb.ConfigGet(ctx, name).Result()
	require.NoError(t, err)
	require.NoError(t, rdb.ConfigSet(ctx, name, value).Err())
	t.Cleanup(func() { rdb.ConfigSet(context.Background(), name, was[name]) })
}

func TestCheckEviction(t *testing.T) {
	rdb := redisClient(t)
	s := redisbucket.New(rdb, redisbucket.WithLogger(nil))
	ctx := context.Background()

	setConfig(t, rdb, "maxmemory", "0")
	setConfig(t, rdb, "maxmemory-policy", "allkeys-lru")
	assert.NoError(t, s.CheckEviction(ctx), "no memory limit: nothing is evicted, whatever the policy")

	setConfig(t, rdb, "maxmemory", "1gb")
	for _, policy := range []string{"allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"} {
		setConfig(t, rdb, "maxmemory-policy", policy)
		err := s.CheckEviction(ctx)
		require.ErrorIs(t, err, redisbucket.ErrEviction, policy)
		assert.Contains(t, err.Error(), "maxmemory-policy "+policy, "the error names the setting")
	}
	setConfig(t, rdb, "maxmemory-policy", "noeviction")
	assert.NoError(t, s.CheckEviction(ctx))
}

func TestCheckEvictionOfARedisThatDoesNotAnswer(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	s := redisbucket.New(rdb, redisbucket.WithLogger(nil))
	err := s.CheckEviction(context.Background())
	require.Error(t, err)
	assert.NotErrorIs(t, err, redisbucket.ErrEviction, "not known: not said")
}

func TestTheStoreWarnsOnceOfEviction(t *testing.T) {
	rdb := redisClient(t)
	setConfig(t, rdb, "maxmemory", "1gb")
	setConfig(t, rdb, "maxmemory-policy", "allkeys-lru")
	var logs logLines
	s := redisbucket.New(rdb, redisbucket.WithLogger(logs.logger()))
	b := bucket.New(bucket.PerSecond(100), bucket.WithStore(s, testKey(t)))
	for range 3 {
		require.NoError(t, b.Wait(context.Background(), 1))
	}
	// The check runs beside the first reservation, bounded by the store's
	// timeout.
	require.Eventually(t, func() bool { return len(logs.get()) > 0 }, 5*time.Second, 10*time.Millisecond)
	lines := logs.get()
	require.Len(t, lines, 1, "once")
	assert.Contains(t, lines[0], "may evict bucket keys")
	assert.Contains(t, lines[0], "allkeys-lru")
}
