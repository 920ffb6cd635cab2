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

// The script's arithmetic, against a real Redis. The buckets are slow (a
// token every 1000 s), so the milliseconds between calls do not show in
// the waits, which are checked to the second.

const slowEvery = 1000 * time.Second

var slow = bucket.Shape{PerSecond: 1 / slowEvery.Seconds(), Burst: 1}

func reserve(t *testing.T, s *redisbucket.Store, key string, n float64, maxWait time.Duration, shape bucket.Shape) bucket.Reservation {
	t.Helper()
	r, err := s.Reserve(context.Background(), key, n, maxWait, shape)
	require.NoError(t, err)
	require.False(t, s.Local(), "the store fell back to local limiting")
	return r
}

func TestReserveGCRA(t *testing.T) {
	s := newStore(redisClient(t))
	key := testKey(t)
	first := reserve(t, s, key, 1, -1, slow)
	assert.True(t, first.OK)
	assert.Zero(t, first.Wait, "a new bucket lets its first request through at once")
	assert.InDelta(t, slow.PerSecond, first.Rate, 1e-12)
	for i := 1; i <= 3; i++ {
		r := reserve(t, s, key, 1, -1, slow)
		assert.True(t, r.OK)
		assert.InDelta(t, float64(time.Duration(i)*slowEvery), float64(r.Wait), float64(time.Second), "reservation %d", i)
		assert.Greater(t, r.ID, first.ID)
	}
}

func TestReserveWeighted(t *testing.T) {
	s := newStore(redisClient(t))
	key := testKey(t)
	shape := bucket.Shape{PerSecond: slow.PerSecond, Burst: 10}
	tests := []struct {
		n    float64
		wait time.Duration
	}{
		{5, 0},               // a new bucket: the first passes at once
		{5, 5 * slowEvery},   // five tokens' worth of time
		{1, 6 * slowEvery},   // behind them
		{20, 26 * slowEvery}, // larger than the burst: its full share
	}
	for _, tt := range tests {
		r := reserve(t, s, key, tt.n, -1, shape)
		assert.True(t, r.OK)
		assert.InDelta(t, float64(tt.wait), float64(r.Wait), float64(time.Second), "n=%v", tt.n)
		assert.Equal(t, tt.n, r.Tokens)
	}
}

func TestReserveMaxWait(t *testing.T) {
	s := newStore(redisClient(t))
	key := testKey(t)
	reserve(t, s, key, 1, -1, slow)
	refused := reserve(t, s, key, 1, slowEvery/2, slow)
	assert.False(t, refused.OK, "a wait past maxWait is not reserved")
	assert.InDelta(t, float64(slowEvery), float64(refused.Wait), float64(time.Second), "it reports the wait it would have had")
	next := reserve(t, s, key, 1, -1, slow)
	assert.InDelta(t, float64(slowEvery), float64(next.Wait), float64(time.Second), "the refusal took nothing")
}

func TestCancelGivesBack(t *testing.T) {
	s := newStore(redisClient(t))
	ctx := context.Background()
	key := testKey(t)
	reserve(t, s, key, 1, -1, slow)
	a := reserve(t, s, key, 1, -1, slow)
	b := reserve(t, s, key, 2, -1, slow)

	s.Cancel(ctx, key, a) // b was reserved after a: a's slot stays spent
	c := reserve(t, s, key, 1, -1, slow)
	assert.InDelta(t, float64(4*slowEvery), float64(c.Wait), float64(time.Second), "a cancel under a later reservation gives nothing back")

	s.Cancel(ctx, key, c) // the latest: given back
	s.Cancel(ctx, key, b) // now the latest again: given back too
	s.Cancel(ctx, key, b) // twice: nothing more
	d := reserve(t, s, key, 1, -1, slow)
	assert.InDelta(t, float64(2*slowEvery), float64(d.Wait), float64(time.Second), "a queue cancelled from its tail gives everything back")
}

func TestPauseShared(t *testing.T) {
	rdb := redisClient(t)
	one, other := newStore(rdb), newStore(rdb) // two replicas
	ctx := context.Background()
	key := testKey(t)
	fast := bucket.Shape{PerSecond: 1000, Burst: 1000}
	reserve(t, one, key, 1, -1, fast)
	other.Pause(ctx, key, time.Now().Add(500*time.Second), fast)
	other.Pause(ctx, key, time.Now().Add(time.Second), fast) // never shortens
	r := reserve(t, one, key, 1, -1, fast)
	assert.InDelta(t, float64(500*time.Second), float64(r.Wait), float64(time.Second), "another replica's pause holds this one")
	r = reserve(t, one, key, 1, -1, fast)
	assert.InDelta(t, float64(500*time.Second+time.Millisecond), float64(r.Wait), float64(time.Second), "after the pause the rest are paced from its end")
}

func TestSetRateShared(t *testing.T) {
	rdb := redisClient(t)
	one, other := newStore(rdb), newStore(rdb)
	ctx := context.Background()
	key := testKey(t)
	reserve(t, one, key, 1, -1, slow)
	other.SetRate(ctx, key, bucket.Shape{PerSecond: slow.PerSecond / 2, Burst: 1})
	r := reserve(t, one, key, 1, -1, slow) // asks with its own, older rate
	assert.InDelta(t, slow.PerSecond/2, r.Rate, 1e-12, "the stored rate wins over the caller's")
	assert.InDelta(t, float64(2*slowEvery), float64(r.Wait), float64(time.Second), "paced at the stored rate")
}

func TestKeyExpires(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	for _, idle := range []time.Duration{0, time.Minute} {
		s := newStore(rdb, redisbucket.WithPrefix("steady:test:"), redisbucket.WithIdle(idle))
		key := testKey(t)
		shape := bucket.Shape{PerSecond: 0.01, Burst: 3} // full again 300 s after empty
		reserve(t, s, key, 3, -1, shape)
		ttl, err := rdb.PTTL(ctx, "steady:test:"+key).Result()
		require.NoError(t, err)
		assert.InDelta(t, float64(300*time.Second+idle), float64(ttl), float64(time.Second), "idle %v", idle)

		s.Pause(ctx, key, time.Now().Add(1000*time.Second), shape)
		ttl, err = rdb.PTTL(ctx, "steady:test:"+key).Result()
		require.NoError(t, err)
		assert.InDelta(t, float64(1300*time.Second+idle), float64(ttl), float64(time.Second), "a pause keeps the key")
	}
}

// A wait beyond bucket.MaxWait (two thousand tokens at the slowest rate a
// bucket keeps, a token every 100 days) is refused with bucket.ErrTooLong,
// as a bucket in memory refuses it, in Redis and in the fallback alike: it
// neither wraps around into a grant at once nor holds the caller for
// centuries. It takes nothing.
func TestAWaitBeyondMaxWaitIsRefused(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "local"}[down], func(t *testing.T) {
			rdb := redisClient(t)
			if down {
				rdb = redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
				defer rdb.Close()
			}
			s := newStore(rdb, redisbucket.WithLogger(nil), redisbucket.WithShare(1))
			b := bucket.New(bucket.Rate{Tokens: 1, Per: bucket.MaxInterval}, bucket.WithStore(s, testKey(t)))
			require.ErrorIs(t, b.Wait(context.Background(), 2000), bucket.ErrTooLong)
			require.Equal(t, down, s.Local())
			require.True(t, b.TryTake(1), "the refusal took nothing")
		})
	}
}
