package bucket_test

import (
	"context"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
)

// memStore is a Store in memory: GCRA per key, as a shared backend would
// keep it.
type memStore struct {
	mu    sync.Mutex
	keys  map[string]*memKey
	calls int
}

type memKey struct {
	tat, every, burst float64 // UnixNano, ns per token, tokens
	until             float64 // end of a pause, UnixNano
	seq               int64
}

func newMemStore() *memStore { return &memStore{keys: map[string]*memKey{}} }

func (m *memStore) key(k string, sh bucket.Shape) *memKey {
	s := m.keys[k]
	if s == nil {
		s = &memKey{every: 1e9 / sh.PerSecond, burst: sh.Burst, tat: math.Inf(-1)}
		m.keys[k] = s
	}
	return s
}

func (m *memStore) Reserve(ctx context.Context, key string, n float64, maxWait time.Duration, sh bucket.Shape) (bucket.Reservation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	s := m.key(key, sh)
	now := float64(time.Now().UnixNano())
	base := max(s.tat, now-s.burst*s.every, s.until-min(n, s.burst)*s.every)
	after := base + n*s.every
	wait := time.Duration(max(after, s.until, now) - now)
	r := bucket.Reservation{Wait: wait, Rate: 1e9 / s.every, Tokens: n}
	if maxWait >= 0 && wait > maxWait {
		return r, nil
	}
	s.tat = after
	s.seq++
	r.OK, r.ID = true, s.seq
	return r, nil
}

func (m *memStore) Cancel(ctx context.Context, key string, r bucket.Reservation) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.keys[key]; s != nil && s.seq == r.ID {
		s.tat -= r.Tokens * s.every
		s.seq--
	}
}

func (m *memStore) Pause(ctx context.Context, key string, until time.Time, sh bucket.Shape) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.key(key, sh)
	s.until = max(s.until, float64(until.UnixNano()))
}

func (m *memStore) SetRate(ctx context.Context, key string, sh bucket.Shape) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.key(key, sh)
	now := float64(time.Now().UnixNano())
	every := 1e9 / sh.PerSecond
	if s.tat > now-s.burst*s.every && !math.IsInf(s.tat, -1) {
		s.tat = now - (now-s.tat)/s.every*every
	}
	s.every, s.burst = every, sh.Burst
}

var _ bucket.Store = (*memStore)(nil)

func TestBucketsSharingAStoreShareTheLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		a := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		start := time.Now()
		var wg sync.WaitGroup
		for _, bk := range []*bucket.Bucket{a, b} {
			for range 4 {
				wg.Go(func() {
					for range 5 {
						assert.NoError(t, bk.Wait(context.Background(), 1))
					}
				})
			}
		}
		wg.Wait()
		// 40 tokens at 10 a second from one shared key: a burst of 10,
		// then 30 at 100ms.
		assert.Equal(t, 3*time.Second, time.Since(start))
	})
}

func TestAStorePauseAndRateReachEveryBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		a := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		require.True(t, a.TryTake(1))
		start := time.Now()
		a.Pause(start.Add(2 * time.Second))
		assert.False(t, a.TryTake(1), "paused here")
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.GreaterOrEqual(t, time.Since(start), 2*time.Second, "and in the other bucket too")

		a.SetRate(bucket.PerSecond(1))
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, bucket.PerSecond(1), b.Rate(), "the rate one bucket set, the other adopts")
	})
}

func TestAStoreWaitPastTheDeadlineIsRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(1), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(1))
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		assert.ErrorIs(t, b.Wait(ctx, 1), context.DeadlineExceeded)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.Zero(t, b.Waiting())
	})
}

// A bucket at the infinite rate tells its store a finite shape, stays
// unlimited through the store's answers, and shares its pauses.
func TestAnUnlimitedBucketInAStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.Every(0), bucket.WithStore(store, "k"))
		start := time.Now()
		for range 100 {
			require.NoError(t, b.Wait(context.Background(), 1))
		}
		assert.True(t, b.TryTake(1000))
		assert.Zero(t, time.Since(start), "no wait")
		store.mu.Lock()
		assert.InDelta(t, 1e9/bucket.UnlimitedShape, store.keys["k"].every, 1e-18, "the store keeps a finite rate")
		store.mu.Unlock()
		assert.True(t, b.Rate().Unlimited(), "the store's answers leave it unlimited")

		other := bucket.New(bucket.Every(0), bucket.WithStore(store, "k"))
		b.Pause(start.Add(time.Second))
		require.NoError(t, other.Wait(context.Background(), 1))
		assert.Equal(t, time.Second, time.Since(start), "another bucket of the key waits for the pause")
	})
}
