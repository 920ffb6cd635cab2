package redisbucket_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/conformance"
)

// A bucket's hash holding what the scripts never write (a hand edit,
// another program under the prefix, another version's units) is taken as
// a bucket without those fields: the key is still limited, at the
// caller's rate where the stored one is no rate, the store stays shared,
// and the key is written back whole, with an expiry.
func TestGarbageInTheHashIsReplaced(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	const prefix = "steady:test:garbage:"
	shape := slow // waits in thousands of seconds: a busy machine's delays do not show
	fields := map[string][]any{
		"rate not a number":   {"r", "abc"},
		"rate zero":           {"r", "0"},
		"rate negative":       {"r", "-5"},
		"rate nan":            {"r", "nan"},
		"rate inf":            {"r", "inf"},
		"rate tiny":           {"r", "1e-300"},
		"burst nan":           {"u", "nan"},
		"base nan":            {"b", "nan"},
		"base far":            {"b", "1e300"},
		"pause inf":           {"p", "inf"},
		"pause far":           {"p", "1e300"},
		"sequence far":        {"s", "1e300"},
		"sequence fractional": {"s", "1.5"},
		"sequence past 2^53":  {"s", "9007199254740993"},
	}
	for name, hash := range fields {
		t.Run(name, func(t *testing.T) {
			s := newStore(rdb, redisbucket.WithLogger(nil), redisbucket.WithPrefix(prefix))
			key := testKey(t)
			require.NoError(t, rdb.HSet(ctx, prefix+key, hash...).Err())
			t.Cleanup(func() { rdb.Del(context.Background(), prefix+key) })

			first, err := s.Reserve(ctx, key, 1, -1, shape)
			require.NoError(t, err)
			second, err := s.Reserve(ctx, key, 1, -1, shape)
			require.NoError(t, err)
			assert.False(t, s.Local(), "Redis answered: the store stays shared")
			assert.True(t, first.OK)
			assert.Zero(t, first.Wait, "a bucket without state passes its first request")
			assert.True(t, second.OK)
			assert.InDelta(t, float64(slowEvery), float64(second.Wait), float64(time.Second), "and paces the next at the caller's rate")
			assert.Equal(t, shape.PerSecond, second.Rate)
			assert.Greater(t, second.ID, first.ID)

			ttl, err := rdb.PTTL(ctx, prefix+key).Result()
			require.NoError(t, err)
			assert.Positive(t, ttl, "the key expires")
			assert.LessOrEqual(t, ttl, 2*slowEvery+redisbucket.DefaultIdle)
		})
	}
}

// A burst so large that the bucket would be full again only in eons is a
// burst a bucket may have (bucket.WithBurst), not garbage: the script
// still expires the key, at its longest expiry, rather than fail on an
// expiry PEXPIRE does not take and leave the key forever.
func TestAnAbsurdBurstStillExpires(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	const prefix = "steady:test:garbage:"
	s := newStore(rdb, redisbucket.WithLogger(nil), redisbucket.WithPrefix(prefix))
	key := testKey(t)
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+key) })
	shape := bucket.Shape{PerSecond: 1, Burst: 1e300}
	r, err := s.Reserve(ctx, key, 1, -1, shape)
	require.NoError(t, err)
	assert.True(t, r.OK)
	assert.False(t, s.Local(), "Redis answered: the store stays shared")
	ttl, err := rdb.PTTL(ctx, prefix+key).Result()
	require.NoError(t, err)
	assert.Positive(t, ttl, "the key expires")
}

// A key of another type under the store's prefix (another program's, or
// a string a script of another version wrote) is not the store's to
// overwrite: that key is limited in process, at the store's share, and
// said once, while every other key stays shared, since Redis answers.
func TestAKeyOfAnotherTypeIsLimitedInProcessAlone(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	const prefix = "steady:test:garbage:"
	var logs logLines
	var events conformance.EventRecorder
	s := newStore(rdb, redisbucket.WithPrefix(prefix), redisbucket.WithLogger(logs.logger()),
		redisbucket.WithEvents(events.Record), redisbucket.WithShare(0.5))
	foreign, mine := testKey(t)+":foreign", testKey(t)+":mine"
	require.NoError(t, rdb.Set(ctx, prefix+foreign, "not a bucket", time.Minute).Err())
	t.Cleanup(func() { rdb.Del(context.Background(), prefix+foreign, prefix+mine) })
	shape := bucket.Shape{PerSecond: 2 * slow.PerSecond, Burst: 1}

	for range 3 {
		_, err := s.Reserve(ctx, foreign, 1, -1, shape)
		require.NoError(t, err)
	}
	r, err := s.Reserve(ctx, foreign, 1, -1, shape)
	require.NoError(t, err)
	assert.True(t, r.OK)
	assert.InDelta(t, float64(3*slowEvery), float64(r.Wait), float64(time.Second), "limited in process at half the rate")
	assert.False(t, s.Local(), "Redis answers: the store stays shared")

	shared, err := s.Reserve(ctx, mine, 1, -1, shape)
	require.NoError(t, err)
	assert.Positive(t, shared.ID, "another key is reserved in Redis")
	assert.Empty(t, events.Events(), "the store never went local")
	lines := logs.get()
	require.Len(t, lines, 1, "said once: %q", lines)
	assert.Contains(t, lines[0], "WRONGTYPE")
	assert.NotContains(t, lines[0], "unreachable")
	assert.Equal(t, "string", rdb.Type(ctx, prefix+foreign).Val(), "the other program's key is left alone")
}
