package bucket

import (
	"context"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An idle bucket holds no timer; a queue gets one, for its head only, and
// loses it when it empties, whether by grants or by cancellations.
func TestOneTimerOnlyWhileAQueueWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerSecond(10))
		require.True(t, b.TryTake(1))
		assert.Nil(t, b.timer, "no timer until a queue forms")

		done := make(chan error, 3)
		for range 3 {
			go func() { done <- b.Wait(context.Background(), 1) }()
		}
		synctest.Wait()
		b.mu.Lock()
		assert.NotNil(t, b.timer)
		assert.InDelta(t, float64(100*time.Millisecond), b.timerAt, 1, "armed for the head only")
		b.mu.Unlock()
		for range 3 {
			require.NoError(t, <-done)
		}
		b.mu.Lock()
		assert.Equal(t, -1.0, b.timerAt, "stopped when the queue emptied")
		b.mu.Unlock()

		ctx, cancel := context.WithCancel(context.Background())
		go func() { done <- b.Wait(ctx, 5) }()
		synctest.Wait()
		b.mu.Lock()
		assert.GreaterOrEqual(t, b.timerAt, 0.0)
		b.mu.Unlock()
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		b.mu.Lock()
		assert.Equal(t, -1.0, b.timerAt, "stopped when the last waiter left")
		b.mu.Unlock()
	})
}

// Queued waits reuse pooled waiters and their channels: a stream of them
// allocates nothing once warm.
func TestQueuedWaitsDoNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerSecond(1000), WithInitial(0))
		ctx := context.Background()
		require.NoError(t, b.Wait(ctx, 1)) // warm the pool and the timer
		allocs := testing.AllocsPerRun(100, func() {
			if err := b.Wait(ctx, 1); err != nil {
				t.Error(err)
			}
		})
		assert.LessOrEqual(t, allocs, 1.0)
		t.Logf("%.2f allocations per queued wait", allocs)
	})
}

// Waiting costs no goroutine: a queue of a hundred runs on the hundred
// callers' own, and at most the head's timer adds one when it fires.
func TestNoGoroutinePerWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerSecond(1), WithInitial(0))
		before := runtime.NumGoroutine()
		done := make(chan error, 100)
		for range 100 {
			go func() { done <- b.Wait(context.Background(), 1) }()
		}
		synctest.Wait()
		require.Equal(t, 100, b.Waiting())
		// NumGoroutine counts the whole process, where goroutines of tests
		// run before may still be ending: the count can only be lower.
		assert.LessOrEqual(t, runtime.NumGoroutine(), before+100, "the callers' goroutines only")
		b.SetRate(PerSecond(1e6))
		for range 100 {
			require.NoError(t, <-done)
		}
	})
}
