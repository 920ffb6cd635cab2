package redisbucket_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
)

// A pause this process set while its own call to Redis failed (a 429 seen
// during a blip) is written to Redis when it answers again, as a rate set
// then is: the other replicas, which may never have lost Redis, are held
// by the 429's pause too.
func TestAPauseSetDuringAnOutageIsSharedWhenRedisAnswers(t *testing.T) {
	s, sw, other := outageStores(t)
	ctx := context.Background()
	key := testKey(t)
	fast := bucket.Shape{PerSecond: 1000, Burst: 1000}

	_, err := s.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	sw.off.Store(true)
	s.Pause(ctx, key, time.Now().Add(100*time.Second), fast) // the server's 429: reset in 100 s
	require.True(t, s.Local(), "the call failed: the pause is held in process")
	sw.off.Store(false)
	time.Sleep(50 * time.Millisecond) // past the probe period

	_, err = s.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	require.False(t, s.Local(), "Redis answers again")
	r, err := other.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	assert.InDelta(t, float64(100*time.Second), float64(r.Wait), float64(2*time.Second),
		"another replica is held by the 429's pause")
}

// Reserve refuses what is no number of tokens, or no rate, instead of
// failing open: a NaN, negative or infinite count, or a shape whose rate
// is NaN, zero or negative, neither passes at once nor leaves the shared
// bucket emptied, reset or full.
func TestReserveRefusesBadInputs(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	for name, n := range map[string]float64{"nan": math.NaN(), "negative": -5, "inf": math.Inf(1), "huge": 1e300} {
		t.Run(name, func(t *testing.T) {
			s := newStore(rdb)
			key := testKey(t)
			reserve(t, s, key, 1, -1, slow) // the bucket's one token
			r, err := s.Reserve(ctx, key, n, -1, slow)
			require.NoError(t, err)
			if r.OK && r.Wait < bucket.MaxWait {
				t.Errorf("n=%v granted: %+v", n, r)
			}
			next := reserve(t, s, key, 1, -1, slow)
			assert.InDelta(t, float64(slowEvery), float64(next.Wait), float64(time.Second),
				"n=%v left the bucket as it was: the next token waits its turn", n)
		})
	}
	for name, rate := range map[string]float64{"nan": math.NaN(), "zero": 0, "negative": -1} {
		t.Run("rate "+name, func(t *testing.T) {
			s := newStore(rdb)
			key := testKey(t)
			shape := bucket.Shape{PerSecond: rate, Burst: 1}
			granted := 0
			for range 3 {
				r, err := s.Reserve(ctx, key, 1, time.Hour, shape)
				require.NoError(t, err)
				if r.OK && r.Wait == 0 {
					granted++
				}
			}
			assert.LessOrEqual(t, granted, 1, "a bucket without a rate lets nothing through unlimited")
		})
	}
}

// A reservation made before Redis lost the key (a restart, a flush, an
// eviction) gives back nothing when cancelled after it: its ID names no
// reservation of the key's new state, and giving back there would hand a
// slot already promised to another replica to a third.
func TestACancelFromBeforeTheStateWasLostGivesBackNothing(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	a, b := newStore(rdb), newStore(rdb) // two replicas
	key := testKey(t)
	reserve(t, a, key, 1, -1, slow)
	sleeping := reserve(t, a, key, 1, -1, slow)                           // A sleeps 1000 s on it
	require.NoError(t, rdb.Del(ctx, redisbucket.DefaultPrefix+key).Err()) // the state is lost

	reserve(t, b, key, 1, -1, slow)
	promised := reserve(t, b, key, 1, -1, slow) // B is told its slot, 1000 s on
	require.InDelta(t, float64(slowEvery), float64(promised.Wait), float64(time.Second))
	a.Cancel(ctx, key, sleeping) // A's caller gives up
	next := reserve(t, b, key, 1, -1, slow)
	assert.InDelta(t, float64(2*slowEvery), float64(next.Wait), float64(time.Second),
		"queued behind B's promised slot, not given it a second time")
}

// A reservation made in process during one outage gives back nothing when
// cancelled during the next: the in-process bucket of the next outage is
// a new one, whose reservations its ID must not name.
func TestACancelFromAnEarlierOutageGivesBackNothing(t *testing.T) {
	s, sw, _ := outageStores(t)
	ctx := context.Background()
	key := testKey(t)
	shape := bucket.Shape{PerSecond: 1e-3, Burst: 1} // a token every 1000 s
	// In process, a quarter of the rate (DefaultShare): one every 4000 s.
	every := float64(time.Duration(float64(time.Second) / (shape.PerSecond * redisbucket.DefaultShare)))
	local := func(want bool) {
		t.Helper()
		require.Eventually(t, func() bool {
			_, err := s.Reserve(ctx, testKey(t)+":probe", 1, -1, bucket.Shape{PerSecond: 1e6, Burst: 1e6})
			return err == nil && s.Local() == want
		}, 5*time.Second, 5*time.Millisecond)
	}

	sw.off.Store(true) // the first outage
	local(true)
	_, err := s.Reserve(ctx, key, 1, -1, shape)
	require.NoError(t, err)
	old, err := s.Reserve(ctx, key, 1, -1, shape) // sleeps 4000 s
	require.NoError(t, err)
	require.True(t, old.OK && old.ID < 0, "reserved in process")

	sw.off.Store(false) // Redis answers: the outage ends
	local(false)
	sw.off.Store(true) // and the next begins
	local(true)
	_, err = s.Reserve(ctx, key, 1, -1, shape)
	require.NoError(t, err)
	promised, err := s.Reserve(ctx, key, 1, -1, shape)
	require.NoError(t, err)
	require.InDelta(t, every, float64(promised.Wait), float64(time.Second))

	s.Cancel(ctx, key, old) // the first outage's caller gives up
	next, err := s.Reserve(ctx, key, 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, 2*every, float64(next.Wait), float64(time.Second),
		"queued behind the promised slot, not given it a second time")
}

// A shape that is no rate and burst (a rate NaN, zero or infinite, a burst
// NaN, negative or infinite) is written into no key: Reserve refuses it,
// taking nothing, SetRate ignores it, and Pause still holds the key but
// keeps its rate and burst out of the hash. The key then expires as any
// other, where such a shape made it live 31,000 years (an expiry of NaN or
// infinity taken as the longest), with fields every call reads as absent.
func TestAShapeThatIsNoShapeIsWrittenIntoNoKey(t *testing.T) {
	rdb := redisClient(t)
	ctx := context.Background()
	const prefix = "steady:test:noshape:"
	s := newStore(rdb, redisbucket.WithPrefix(prefix))
	good := bucket.Shape{PerSecond: 1, Burst: 1}
	ttlOf := func(key string) time.Duration {
		ttl, err := rdb.PTTL(ctx, prefix+key).Result()
		require.NoError(t, err)
		return ttl
	}
	for name, bad := range map[string]bucket.Shape{
		"rate 0": {PerSecond: 0, Burst: 1}, "rate NaN": {PerSecond: math.NaN(), Burst: 1},
		"rate Inf": {PerSecond: math.Inf(1), Burst: 1}, "burst NaN": {PerSecond: 1, Burst: math.NaN()},
		"burst Inf": {PerSecond: 1, Burst: math.Inf(1)}, "burst -5": {PerSecond: 1, Burst: -5},
	} {
		t.Run(name, func(t *testing.T) {
			key := testKey(t)
			t.Cleanup(func() { rdb.Del(context.Background(), prefix+key, prefix+key+":new") })

			r, err := s.Reserve(ctx, key+":new", 1, -1, bad)
			require.NoError(t, err)
			assert.False(t, r.OK && r.Wait < bucket.MaxWait, "refused: %+v", r)
			assert.LessOrEqual(t, ttlOf(key+":new"), time.Duration(0), "and nothing written")

			s.Pause(ctx, key, time.Now().Add(10*time.Second), bad)
			assert.Positive(t, ttlOf(key))
			assert.LessOrEqual(t, ttlOf(key), 10*time.Second+redisbucket.DefaultIdle+time.Second, "the key expires after the pause")
			h, err := rdb.HGetAll(ctx, prefix+key).Result()
			require.NoError(t, err)
			assert.NotContains(t, h, "r", "no rate written")
			assert.NotContains(t, h, "u", "no burst written")
			r = reserve(t, s, key, 1, -1, good)
			assert.InDelta(t, float64(10*time.Second), float64(r.Wait), float64(time.Second), "the pause holds")

			s.SetRate(ctx, key, bad)
			assert.LessOrEqual(t, ttlOf(key), 11*time.Second+redisbucket.DefaultIdle+time.Second, "the key still expires")
			r = reserve(t, s, key, 1, -1, good)
			assert.Equal(t, 1.0, r.Rate, "the rate is as it was")
			assert.InDelta(t, float64(11*time.Second), float64(r.Wait), float64(time.Second), "and so is the bucket")
		})
	}
}
