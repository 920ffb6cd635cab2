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

// Within a process, the waits on a bucket in a store take their turns by
// priority: the wait holding the turn keeps it, and an interactive wait
// that comes later asks the store before the batch waits queued before it.
func TestAStoreQueueServesByPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(10), "the bucket's first burst")
		g := newGrants()
		g.wait(batch, b, "batch 1", 1) // holds the turn, reserved for 100ms
		g.wait(batch, b, "batch 2", 1)
		g.wait(batch, b, "batch 3", 1)
		g.wait(interactive, b, "interactive", 1)
		assert.Equal(t, 4, b.Waiting())
		assert.False(t, b.TryTake(1), "TryTake jumps no queue")
		time.Sleep(time.Second)
		assert.Equal(t, []string{"batch 1", "interactive", "batch 2", "batch 3"}, g.Order())
		assert.Equal(t, 200*time.Millisecond, g.When("interactive"))
		assert.Equal(t, 400*time.Millisecond, g.When("batch 3"))
		assert.Zero(t, b.Waiting())
	})
}

// A wait on a bucket in a store cancelled while it waits for its turn
// leaves the queue; one handed the turn as it is cancelled hands it on.
func TestAStoreTurnIsHandedOnWhenItsWaitEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newMemStore()
		b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
		require.True(t, b.TryTake(10))
		g := newGrants()
		g.wait(context.Background(), b, "first", 1)
		ctx, cancel := context.WithCancel(interactive)
		g.wait(ctx, b, "cancelled", 1)
		g.wait(context.Background(), b, "last", 1)
		cancel()
		synctest.Wait()
		assert.ErrorIs(t, g.Err("cancelled"), context.Canceled)
		time.Sleep(time.Second)
		assert.Equal(t, []string{"cancelled", "first", "last"}, g.Order())
		assert.Equal(t, 200*time.Millisecond, g.When("last"))
		assert.Zero(t, b.Waiting())
		assert.True(t, b.TryTake(1), "the turn is free again")
	})
}

// A wait cancelled at the moment the turn is handed to it either takes it
// and gives its reservation back, or hands it on at once: either way the
// wait behind it gets the slot.
func TestAStoreTurnHandedAsTheWaitIsCancelled(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			store := newMemStore()
			b := bucket.New(bucket.PerSecond(10), bucket.WithStore(store, "k"))
			require.True(t, b.TryTake(10))
			g := newGrants()
			g.wait(context.Background(), b, "first", 1) // gives the turn up at 100ms
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				time.Sleep(100 * time.Millisecond)
				cancel()
			}()
			g.wait(ctx, b, "cancelled", 1)
			g.wait(context.Background(), b, "last", 1)
			time.Sleep(time.Second)
			assert.ErrorIs(t, g.Err("cancelled"), context.Canceled)
			assert.Equal(t, 200*time.Millisecond, g.When("last"))
			assert.Zero(t, b.Waiting())
		})
	}
}
