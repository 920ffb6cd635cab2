package bucket_test

import (
	"context"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
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

func TestARateFromTheStoreStaysUnderTheLimitsCeiling(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		fast := bucket.New(bucket.PerSecond(100), bucket.WithStore(store, "k"))
		slow := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		// Limit's ceiling is the rate its bucket was made with: a rate
		// another process's Limit set in the store is adopted only up to it.
		_ = bucket.Limit(slow)
		require.NoError(t, fast.Wait(context.Background(), 1))
		fast.SetRate(bucket.PerSecond(50))
		require.NoError(t, slow.Wait(context.Background(), 1))
		assert.Equal(t, bucket.PerSecond(10), slow.Rate(), "held at its Limit's ceiling")

		fast.SetRate(bucket.PerSecond(5))
		require.NoError(t, slow.Wait(context.Background(), 1))
		assert.Equal(t, bucket.PerSecond(5), slow.Rate(), "a lower rate is adopted")
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

// slowStore is a memStore whose pauses and rates take an hour to reach it.
type slowStore struct{ *memStore }

func (s slowStore) Pause(ctx context.Context, key string, until time.Time, sh bucket.Shape) {
	time.Sleep(time.Hour)
	s.memStore.Pause(ctx, key, until, sh)
}

func (s slowStore) SetRate(ctx context.Context, key string, sh bucket.Shape) {
	time.Sleep(time.Hour)
	s.memStore.SetRate(ctx, key, sh)
}

func TestASlowStoreHoldsOnlyTheAnswerThatTellsIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			if req.Header.Get("X-Which") == "refused" {
				return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}, Body: http.NoBody}, nil
			}
			<-gate
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}, nil
		})
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(slowStore{newMemStore()}, "k"))
		rt := bucket.Limit(b)(srv)
		send := func(which string) {
			req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", http.NoBody)
			require.NoError(t, err)
			req.Header.Set("X-Which", which)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			transport.Drain(resp)
		}
		start := time.Now()
		var okDone time.Duration
		var wg sync.WaitGroup
		wg.Go(func() { send("ok"); okDone = time.Since(start) })
		synctest.Wait()
		wg.Go(func() { send("refused") }) // its 429 tells the store, which takes an hour
		synctest.Wait()
		close(gate)
		wg.Wait()
		assert.Zero(t, okDone, "the other answer was read at once, not after the store's hour")
	})
}

// heldStore is a memStore whose first SetRate is held on its way to the
// store until held is closed, as a call may wait for a connection or
// the scheduler while a later one goes through.
type heldStore struct {
	*memStore
	held  chan struct{}
	calls atomic.Int32
}

func (s *heldStore) SetRate(ctx context.Context, key string, sh bucket.Shape) {
	if s.calls.Add(1) == 1 {
		<-s.held
	}
	s.memStore.SetRate(ctx, key, sh)
}

// Two rates set one after the other, whose calls to the store cross on
// their way (the first is held up, the second goes through), leave the
// store with the later: the rate a 429 lowered is not undone by the
// raise judged before it, which reached the store last.
func TestRatesWhoseCallsCrossLeaveTheStoreWithTheLatest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &heldStore{memStore: newMemStore(), held: make(chan struct{})}
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		var wg sync.WaitGroup
		wg.Go(func() { b.SetRate(bucket.PerSecond(20)) }) // a raise, held up on its way
		synctest.Wait()
		b.SetRate(bucket.PerSecond(5)) // then a 429 lowers the rate
		close(store.held)
		wg.Wait()

		r, err := store.Reserve(context.Background(), "k", 1, -1, bucket.Shape{PerSecond: 1, Burst: 1})
		require.NoError(t, err)
		assert.Equal(t, 5.0, r.Rate, "the store holds the rate set last")
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, bucket.PerSecond(5), b.Rate(), "and the bucket keeps it")
	})
}
