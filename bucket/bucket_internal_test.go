package bucket

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

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

// A timer is never set for less than a nanosecond, nor past what an int64
// of nanoseconds holds, where the conversion would wrap to a negative wait
// and the timer fire at once.
func TestTimerDelay(t *testing.T) {
	for _, tc := range []struct {
		t, at float64
		want  time.Duration
	}{
		{0, 0.25, 1},
		{1e9, 1e9 + 1.5, 2},
		{0, 1e9, time.Second},
		{0, 1 << 62, 1 << 62},
		{0, 1 << 63, MaxWait},
		{0, 1e27, MaxWait},
		{-1e20, 1e20, MaxWait},
	} {
		assert.Equal(t, tc.want, timerDelay(tc.t, tc.at), "%g to %g", tc.t, tc.at)
	}
}

// A fresh bucket settled for a request passes it at once at any time and
// rate: the float rounding of its base never puts the request after t.
func TestAFreshBucketPassesItsFirstRequestWhateverTheRounding(t *testing.T) {
	rounded := 0
	for _, every := range []float64{1e9 / 3, 1e9 / 7, 6e10 / 7, 123456789.123, float64(MaxInterval)} {
		for i := range 2000 {
			tt := float64(i)*7919.5 + float64(i*i)*1e7 // from 0 to 40 ms, then hours
			for _, n := range []float64{1, 2, 0.5} {
				s := state{every: every, burst: 3, fresh: true}
				if (tt-n*every)+n*every > tt {
					rounded++
				}
				s.settle(tt, n)
				assert.LessOrEqual(t, s.readyAt(tt, n), tt, "every %g, t %g, n %g", every, tt, n)
			}
		}
	}
	t.Logf("%d of the cases round the base up", rounded)
	require.Positive(t, rounded, "the cases test the rounding")
}

// A server's count read as a bucket's level leaves an unlimited bucket
// unlimited: it refills at once.
func TestServerLevelOnAnUnlimitedBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(Every(0))
		now := time.Now()
		b.serverLevel(-5, now, now) // over the server's count
		assert.True(t, math.IsInf(b.Tokens(), 1))
		assert.True(t, b.TryTake(100))
	})
}

// A waiter stays in the 80-byte size class, so that a queue with levels
// costs no more memory per waiter than the single FIFO queue did.
func TestAWaiterFitsEightyBytes(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(waiter{}), uintptr(80))
}

// TestNowLockedIsTheClock holds the grant's clock, the monotonic clock
// moved on from a reading of time.Now taken at most a second before, to
// time.Now: equal to it in a bubble, where the wall clock is never
// stepped, at every instant, across the second at which it reads time.Now
// again.
func TestNowLockedIsTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerSecond(10))
		for _, step := range []time.Duration{0, time.Millisecond, 998 * time.Millisecond, time.Millisecond,
			time.Millisecond, 3 * time.Second, 7 * time.Nanosecond} {
			time.Sleep(step)
			b.mu.Lock()
			now, at := b.nowLocked()
			wallAt := b.wallAt
			b.mu.Unlock()
			want := time.Now()
			assert.True(t, now.Equal(want), "after %v: %v, want %v", step, now, want)
			assert.Equal(t, float64(want.Sub(b.epoch)), at)
			assert.LessOrEqual(t, time.Duration(at)-wallAt, time.Second, "time.Now read at most a second ago")
		}
	})
}

// perSecond counts what was sent over the last second, by tenths: a count
// slides a tenth at a time rather than jumping at each second's turn, an
// answer to a request sent over a second before the latest count is left
// out, and a gap longer than a second leaves nothing counted.
func TestPerSecondSlidesByTenths(t *testing.T) {
	var p perSecond
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for ms := 0; ms < 2000; ms += 100 { // 10 a second, across a second's turn
		p.add(at(ms), 1)
	}
	assert.Equal(t, 10.0, p.last(at(1950)), "the ten sent in the last second")
	assert.Equal(t, 5.0, p.last(at(2450)), "half a second on, the five of its first half")
	assert.Equal(t, 0.0, p.last(at(3000)), "a second on, nothing")

	p.add(at(2950), 1)
	p.add(at(900), 3) // the answer to a request sent over a second before
	assert.Equal(t, 1.0, p.last(at(2950)))
	p.add(at(2000), 2) // sent within the second: counted in its tenth
	assert.Equal(t, 3.0, p.last(at(2950)))
	assert.Equal(t, 1.0, p.last(at(3050)), "the tenth of 2.0 s has slid out")

	p.add(at(60_000), 4) // a minute later: the old counts are gone
	assert.Equal(t, 4.0, p.last(at(60_000)))
}

// The tokens in flight are those of tracked grants whose answer has not
// come back, however they were granted (at once, by the queue) and
// however many callers send and answer at once: each ticket counts the
// others', and an idle limiter has none in flight. Untracked waits count
// nothing.
func TestInFlightCountsTrackedGrantsUntilAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerSecond(10), WithBurst(10), WithInitial(10))
		ctx := context.Background()
		tk, _, err := b.send(ctx, 2) // at once
		require.NoError(t, err)
		assert.Equal(t, 0.0, tk.flying)
		require.NoError(t, b.Wait(ctx, 3)) // untracked
		tk, _, err = b.send(ctx, 4)
		require.NoError(t, err)
		assert.Equal(t, 2.0, tk.flying, "the first grant's")
		assert.Equal(t, 6.0, b.flying())
		b.answered(2)
		assert.Equal(t, 4.0, b.flying())

		// Queued behind the empty bucket: granted by its timer.
		done := make(chan ticket)
		go func() {
			tk, _, err := b.send(ctx, 5)
			assert.NoError(t, err)
			done <- tk
		}()
		tk = <-done
		assert.Equal(t, 4.0, tk.flying)
		assert.Equal(t, 9.0, b.flying())
		b.answered(4)
		b.answered(5)
		assert.Equal(t, 0.0, b.flying())

		// Many callers at once, each answering its own grant: every
		// ticket sees at most the others', and none is left at the end.
		const callers, each = 8, 50
		errs := make(chan error, callers)
		for i := range callers {
			go func() {
				n := float64(1 + i%3)
				for range each {
					tk, _, err := b.send(ctx, n)
					if err != nil {
						errs <- err
						return
					}
					if tk.flying < 0 || tk.flying > float64(callers*3) {
						errs <- fmt.Errorf("%v in flight beside a grant", tk.flying)
						return
					}
					b.answered(n)
				}
				errs <- nil
			}()
		}
		for range callers {
			require.NoError(t, <-errs)
		}
		assert.Equal(t, 0.0, b.flying())
	})
}

// Tokens owed (a correction after the fact, a server's count under
// nothing) are tokens, not time: a rate raised while they are owed pays
// them at the new rate, as SetRate promises the waiters already queued.
// At one a minute, ten owed were ten minutes; at 100 a second they are a
// tenth of a second.
func TestARaisedRateAppliesToTokensOwed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerMinute(1))
		require.True(t, b.TryTake(1))
		b.correct(10)
		done := make(chan time.Time, 1)
		start := time.Now()
		go func() {
			assert.NoError(t, b.Wait(context.Background(), 1))
			done <- time.Now()
		}()
		synctest.Wait()
		b.SetRate(PerSecond(100))
		got := <-done
		assert.InDelta(t, 110*time.Millisecond, got.Sub(start), float64(time.Millisecond),
			"eleven tokens owed at 100 a second take 110 ms")

		// Lowered, the same debt takes longer: the tokens are kept.
		b2 := New(PerSecond(100), WithBurst(1))
		require.True(t, b2.TryTake(1))
		b2.correct(10)
		b2.SetRate(PerSecond(10))
		start = time.Now()
		require.NoError(t, b2.Wait(context.Background(), 1))
		assert.InDelta(t, 1100*time.Millisecond, time.Since(start), float64(time.Millisecond),
			"eleven tokens owed at 10 a second take 1.1 s")
	})
}

// A pause is a time, not tokens: a rate raised during one does not end
// it sooner.
func TestARaisedRateKeepsAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(PerMinute(1))
		start := time.Now()
		b.Pause(start.Add(20 * time.Second))
		b.SetRate(PerSecond(100))
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, 20*time.Second, time.Since(start))
	})
}
