package bucket_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
)

// Within a process, waits on a bucket in a store are served in arrival
// order, with mixed sizes, and each grant costs one call to the store:
// the head asks once and sleeps until its turn, nobody polls.
func TestAStoreQueueIsFIFOWithOneCallPerGrant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(10), "the bucket's first burst")
		start := time.Now()
		var mu sync.Mutex
		var order []int
		at := map[int]time.Duration{}
		var wg sync.WaitGroup
		sizes := []int{1, 5, 1, 2}
		for i, n := range sizes {
			wg.Go(func() {
				assert.NoError(t, b.Wait(context.Background(), n))
				mu.Lock()
				defer mu.Unlock()
				order = append(order, i)
				at[i] = time.Since(start)
			})
			synctest.Wait() // queued before the next arrives
		}
		assert.Equal(t, len(sizes), b.Waiting())
		wg.Wait()
		assert.Equal(t, []int{0, 1, 2, 3}, order, "arrival order, whatever the sizes")
		assert.Equal(t, map[int]time.Duration{0: 100 * time.Millisecond, 1: 600 * time.Millisecond,
			2: 700 * time.Millisecond, 3: 900 * time.Millisecond}, at, "each exactly at its turn")
		assert.Equal(t, 1+len(sizes), store.calls, "one reservation per grant")
	})
}

// A wait cancelled while it sleeps on its reservation gives it back, and
// the wait behind it is granted in its place.
func TestAStoreWaitCancelledGivesItsSlotBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(1), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(1))
		start := time.Now()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Wait(ctx, 1) }()
		synctest.Wait()
		next := make(chan time.Duration, 1)
		go func() {
			assert.NoError(t, b.Wait(context.Background(), 1))
			next <- time.Since(start)
		}()
		time.Sleep(300 * time.Millisecond)
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		assert.Equal(t, time.Second, <-next, "the cancelled wait's slot, not the one after it")
	})
}

// A reservation made before this process's own 429 paused the key waits
// for the pause to end, though the store had given it an earlier time.
func TestAStoreReservationWaitsForALaterPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(1), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(1))
		start := time.Now()
		done := make(chan time.Duration, 1)
		go func() {
			assert.NoError(t, b.Wait(context.Background(), 1))
			done <- time.Since(start)
		}()
		synctest.Wait() // reserved for 1s
		b.Pause(start.Add(3 * time.Second))
		assert.Equal(t, 3*time.Second, <-done)
	})
}
