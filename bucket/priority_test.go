package bucket_test

import (
	"context"
	"fmt"
	"math"
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

var (
	interactive = transport.WithPriority(context.Background(), transport.PriorityInteractive)
	batch       = transport.WithPriority(context.Background(), transport.PriorityBatch)
)

func TestAHigherPriorityGoesFirstFIFOWithinALevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		g.wait(batch, b, "batch 1", 1)
		g.wait(context.Background(), b, "default 1", 1)
		g.wait(batch, b, "batch 2", 1)
		g.wait(interactive, b, "interactive 1", 1)
		g.wait(context.Background(), b, "default 2", 1)
		g.wait(interactive, b, "interactive 2", 1)
		assert.False(t, b.TryTake(1), "TryTake jumps no queue")
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"interactive 1", "interactive 2", "default 1", "default 2", "batch 1", "batch 2"}, g.Order())
		assert.Equal(t, time.Second, g.When("interactive 1"))
		assert.Equal(t, 6*time.Second, g.When("batch 2"))
	})
}

// Within a level a small request never passes a large one; a higher level
// passes both, and the large one then saves its share from where it is.
func TestASmallRequestPassesALargeOneOnlyFromAHigherLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithBurst(10), bucket.WithInitial(0))
		g := newGrants()
		g.wait(batch, b, "large", 5)
		g.wait(batch, b, "small", 1)
		time.Sleep(2 * time.Second)
		g.wait(interactive, b, "interactive", 1)
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"interactive", "large", "small"}, g.Order())
		assert.Equal(t, 2*time.Second, g.When("interactive"), "granted from what the large one had saved")
		assert.Equal(t, 6*time.Second, g.When("large"), "5 tokens, one of them lent")
		assert.Equal(t, 7*time.Second, g.When("small"), "the small one waits behind the large one")
	})
}

// agingRun has four interactive callers keep the bucket busy for ten
// seconds at ten tokens a second while fifty batch waits are queued, and
// counts the batch's grants.
func agingRun(t *testing.T, opts ...bucket.Option) (batchGrants int64, firstBatch time.Duration) {
	b := bucket.New(bucket.PerSecond(10), append([]bucket.Option{bucket.WithInitial(0)}, opts...)...)
	start := time.Now()
	var granted atomic.Int64
	var first atomic.Int64
	ctx, cancel := context.WithCancel(batch)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if b.Wait(ctx, 1) == nil {
				if granted.Add(1) == 1 {
					first.Store(int64(time.Since(start)))
				}
			}
		})
	}
	synctest.Wait()
	stream, stop := context.WithCancel(interactive)
	for range 4 {
		wg.Go(func() {
			for b.Wait(stream, 1) == nil {
			}
		})
	}
	time.Sleep(10*time.Second + time.Millisecond) // 100 grants, at 100ms to 10s
	stop()
	batchGrants = granted.Load()
	cancel()
	wg.Wait()
	return batchGrants, time.Duration(first.Load())
}

// Under a stream of interactive requests that would take the whole rate,
// the batch gets exactly its share: nine interactive grants, then the
// oldest batch wait.
func TestAgingGivesTheOldestWaitersTheirShare(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       []bucket.Option
		batch      int64
		firstBatch time.Duration
	}{
		{"default, a tenth", nil, 10, time.Second},
		{"a quarter", []bucket.Option{bucket.WithAging(0.25)}, 25, 400 * time.Millisecond},
		{"none", []bucket.Option{bucket.WithAging(0)}, 0, 0},
		{"below 0 is none", []bucket.Option{bucket.WithAging(-1)}, 0, 0},
		{"arrival order", []bucket.Option{bucket.WithAging(1)}, 50, 100 * time.Millisecond},
		{"above 1 is arrival order", []bucket.Option{bucket.WithAging(2)}, 50, 100 * time.Millisecond},
		{"NaN keeps the default", []bucket.Option{bucket.WithAging(math.NaN())}, 10, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n, first := agingRun(t, tc.opts...)
				assert.Equal(t, tc.batch, n, "batch grants of the 100")
				assert.Equal(t, tc.firstBatch, first, "the first batch grant")
			})
		})
	}
}

// A batch request larger than the burst is not starved by a stream of
// small interactive ones: aging commits the bucket to it once it is owed,
// and it saves its full share without being passed.
func TestALargeLowerRequestIsNotStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0)) // burst 10
		stream, stop := context.WithCancel(interactive)
		var wg sync.WaitGroup
		start := time.Now()
		done := make(chan time.Duration, 1)
		wg.Go(func() {
			assert.NoError(t, b.Wait(batch, 20))
			done <- time.Since(start)
		})
		synctest.Wait()
		for range 4 {
			wg.Go(func() {
				for b.Wait(stream, 1) == nil {
				}
			})
		}
		// Owed once 180 tokens passed it (18s); then 20 tokens of saving.
		assert.Equal(t, 20*time.Second, <-done)
		stop()
		wg.Wait()
	})
}

// A wait is refused at once only when the waits it cannot pass, and the
// share aging gives older ones, leave it no time: a batch queued below it
// does not count.
func TestEtaCountsOnlyWhatIsAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(batch)
		for range 100 {
			wg.Go(func() { _ = b.Wait(ctx, 1) })
		}
		synctest.Wait()
		start := time.Now()
		// Nothing ahead but the token being saved: due at 1s.
		hurried, stop := context.WithTimeout(interactive, 1500*time.Millisecond)
		assert.NoError(t, b.Wait(hurried, 1))
		assert.Equal(t, time.Second, time.Since(start))
		stop()

		// Nine interactive waits ahead, which with the one before pass the
		// batch ten times, and so one aged batch grant, after the eighth:
		// the tenth interactive wait is due at 11s from now, not 10s.
		start = time.Now()
		g := newGrants()
		for i := range 9 {
			g.wait(interactive, b, string(rune('a'+i)), 1)
		}
		late, stop1 := context.WithTimeout(interactive, 11*time.Second)
		defer stop1()
		assert.ErrorIs(t, b.Wait(late, 1), transport.ErrDeadline, "due at its deadline: refused")
		assert.Zero(t, time.Since(start), "at once")
		fits, stop2 := context.WithTimeout(interactive, 11*time.Second+time.Millisecond)
		defer stop2()
		assert.NoError(t, b.Wait(fits, 1))
		assert.Equal(t, 11*time.Second, time.Since(start), "exactly when eta said")
		assert.Equal(t, 8*time.Second, g.When("h"))
		assert.Equal(t, 10*time.Second, g.When("i"), "the ninth, after the aged batch grant")
		cancel()
		wg.Wait()
	})
}

// Cancelling a higher wait gives its place to the next in line, of
// whatever level.
func TestACancelledHigherWaitGivesItsPlaceBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		g.wait(batch, b, "batch", 1)
		ctx, cancel := context.WithCancel(interactive)
		g.wait(ctx, b, "interactive", 1)
		time.Sleep(500 * time.Millisecond)
		cancel()
		time.Sleep(time.Second)
		assert.Equal(t, []string{"interactive", "batch"}, g.Order())
		assert.ErrorIs(t, g.Err("interactive"), context.Canceled)
		assert.Equal(t, time.Second, g.When("batch"), "the saved token goes to the batch")
		assert.Zero(t, b.Waiting())
	})
}

// A pause refuses the waits it pushes past their deadline in the order the
// queue serves them: a batch wait queued first but served after an
// interactive one is the one refused.
func TestAPauseExpiresWaitsInTheOrderTheyAreServed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		ctx, cancel := context.WithTimeout(batch, 3500*time.Millisecond)
		defer cancel()
		g := newGrants()
		g.wait(ctx, b, "batch", 1)                       // served second: 2s
		g.wait(interactive, b, "interactive", 1)         // served first: 1s
		b.Pause(time.Now().Add(1500 * time.Millisecond)) // 1.5s and 2.5s: both fit
		synctest.Wait()
		assert.Equal(t, 2, b.Waiting())
		b.Pause(time.Now().Add(2600 * time.Millisecond)) // 2.6s and 3.6s: the batch is late
		synctest.Wait()
		assert.ErrorIs(t, g.Err("batch"), transport.ErrDeadline)
		assert.Zero(t, g.When("batch"), "refused when the pause made it late")
		time.Sleep(5 * time.Second)
		assert.NoError(t, g.Err("interactive"))
		assert.Equal(t, 2600*time.Millisecond, g.When("interactive"))
	})
}

// A slower rate applies to every level, and refuses the lower wait it
// makes late while the higher one it does not is served.
func TestSetRateAcrossLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0))
		ctx, cancel := context.WithTimeout(batch, time.Second)
		defer cancel()
		g := newGrants()
		g.wait(ctx, b, "batch", 1)
		g.wait(interactive, b, "interactive", 1)
		b.SetRate(bucket.PerSecond(1)) // interactive at 1s, batch at 2s
		synctest.Wait()
		assert.ErrorIs(t, g.Err("batch"), transport.ErrDeadline)
		time.Sleep(2 * time.Second)
		assert.Equal(t, time.Second, g.When("interactive"))
		assert.Equal(t, bucket.PerSecond(1), b.Rate())
	})
}

// A server window is spent by priority: the higher waits take what it has
// left, the lower ones wait for the bucket's own pacing after it.
func TestAServerWindowIsSpentByPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		start := time.Now()
		b.Pause(start.Add(time.Hour))
		g := newGrants()
		g.wait(batch, b, "batch", 1)
		g.wait(context.Background(), b, "default", 1)
		g.wait(interactive, b, "interactive", 1)
		b.SetRemaining(2, start.Add(5*time.Second))
		synctest.Wait()
		assert.ElementsMatch(t, []string{"interactive", "default"}, g.Order(), "the window's two tokens")
		time.Sleep(10 * time.Second)
		assert.Equal(t, 5*time.Second, g.When("batch"), "at the window's end")
	})
}

// A reserve keeps a token for interactive requests while they come, so the
// next one is granted at once even behind a batch; it lapses after its
// hold, and costs the batch that one token for the spell.
func TestAReserveKeepsTokensForAHigherLevel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0),
			bucket.WithReserve(transport.PriorityInteractive, 1, 10*time.Second))
		var batchDone atomic.Int64
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(batch)
		for range 400 {
			wg.Go(func() {
				if b.Wait(ctx, 1) == nil {
					batchDone.Add(1)
				}
			})
		}
		// The batch is granted every 100ms; the interactive requests come
		// between its grants.
		time.Sleep(5050 * time.Millisecond)
		assert.Equal(t, int64(50), batchDone.Load(), "no reserve before any interactive request")
		var waits []time.Duration
		for range 3 {
			asked := time.Now()
			require.NoError(t, b.Wait(interactive, 1))
			waits = append(waits, time.Since(asked))
			time.Sleep(3030 * time.Millisecond)
		}
		assert.Equal(t, []time.Duration{50 * time.Millisecond, 0, 0}, waits,
			"the first waits for its token, the next find the reserve")
		// At 14.19s: 141 grants' time, less the 3 interactive and the
		// token kept since the first.
		assert.Equal(t, int64(141-3-1), batchDone.Load())
		// The reserve lapses 10s after the last interactive request, at
		// 21.16s, and its token goes to the batch.
		time.Sleep(8 * time.Second)
		assert.Equal(t, int64(221-3), batchDone.Load())
		cancel()
		wg.Wait()
	})
}

// Queued waits of several levels allocate nothing once the pool and the
// levels are warm.
func TestQueuedWaitsOfMixedPrioritiesDoNotAllocate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1000), bucket.WithInitial(0))
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(batch)
		wg.Go(func() {
			for b.Wait(ctx, 1) == nil {
			}
		})
		for _, c := range []context.Context{interactive, context.Background(), interactive} {
			require.NoError(t, b.Wait(c, 1)) // warm the pool, the levels and the timer
		}
		allocs := testing.AllocsPerRun(100, func() {
			if err := b.Wait(interactive, 1); err != nil {
				t.Error(err)
			}
		})
		assert.Zero(t, allocs)
		cancel()
		wg.Wait()
	})
}

// A pause plays the queue forward in the order aging serves it: a batch
// wait owed its turn after nine interactive grants is due then, not after
// every interactive wait, and a pause that leaves it time keeps it.
func TestAPauseExpiresWithAgingInTheOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		patient, cancel := context.WithTimeout(batch, 11*time.Second)
		defer cancel()
		hurried, cancel2 := context.WithTimeout(batch, 11*time.Second)
		defer cancel2()
		g.wait(patient, b, "aged", 1) // after 9 interactive: 10s
		for i := range 12 {
			g.wait(interactive, b, string(rune('a'+i)), 1)
		}
		g.wait(hurried, b, "last batch", 1) // after all 12 and the aged one: 14s, refused at once
		assert.ErrorIs(t, g.Err("last batch"), transport.ErrDeadline)
		b.Pause(time.Now().Add(1500 * time.Millisecond)) // everything 500ms later
		synctest.Wait()
		assert.NoError(t, g.Err("aged"), "10.5s still fits its 11s")
		time.Sleep(20 * time.Second)
		assert.Equal(t, 10500*time.Millisecond, g.When("aged"))
		assert.Equal(t, 9500*time.Millisecond, g.When("i"))
		assert.Equal(t, 11500*time.Millisecond, g.When("j"))
	})
}

// A lower wait's eta counts the reserve kept from it: one that would fit
// without it is refused at once.
func TestEtaCountsTheReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0),
			bucket.WithReserve(transport.PriorityInteractive, 1, time.Minute))
		require.NoError(t, b.Wait(interactive, 1)) // at 100ms; the reserve holds
		start := time.Now()
		ctx, cancel := context.WithTimeout(batch, 150*time.Millisecond)
		defer cancel()
		assert.ErrorIs(t, b.Wait(ctx, 1), transport.ErrDeadline, "due at 200ms: 2 tokens, one of them kept")
		assert.Zero(t, time.Since(start))
		ctx2, cancel2 := context.WithTimeout(batch, 250*time.Millisecond)
		defer cancel2()
		assert.NoError(t, b.Wait(ctx2, 1))
		assert.Equal(t, 200*time.Millisecond, time.Since(start))
	})
}

// WithReserve's arguments: a hold that is not positive keeps a minute;
// tokens of 0 reserve nothing.
func TestReserveOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithReserve(transport.PriorityInteractive, 1, 0))
		require.NoError(t, b.Wait(interactive, 1))
		time.Sleep(bucket.DefaultReserveHold - time.Second) // full: 10 tokens
		assert.False(t, b.TryTake(10), "one of the 10 is kept, for a minute")
		assert.True(t, b.TryTake(9))
		time.Sleep(2 * time.Second)
		assert.True(t, b.TryTake(10), "the reserve lapsed")

		none := bucket.New(bucket.PerSecond(10), bucket.WithReserve(transport.PriorityInteractive, 0, time.Hour))
		require.NoError(t, none.Wait(interactive, 1))
		time.Sleep(time.Minute)
		assert.True(t, none.TryTake(10), "nothing reserved")
	})
}

// A request larger than the burst that a higher level passes keeps what it
// saved beyond the burst: the higher level takes what the bucket would
// hold on its own (its burst, no more), and the large one goes on from
// what is left, with the rest of the rate. Before, its savings were lost
// at each pass, and a sparse stream of interactive requests (a quarter of
// the rate) held it until aging owed it its turn, or for ever without.
func TestALargeLowerRequestKeepsWhatItSavedWhenPassed(t *testing.T) {
	for _, aging := range []float64{bucket.DefaultAging, 0} {
		t.Run(fmt.Sprint("aging ", aging), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0), bucket.WithAging(aging)) // burst 1
				ctx, cancel := context.WithTimeout(interactive, time.Minute)
				defer cancel()
				start := time.Now()
				var wg sync.WaitGroup
				wg.Go(func() {
					assert.NoError(t, b.Wait(transport.WithPriority(ctx, transport.PriorityBatch), 5), "aging %v", aging)
					// Saved 4 by 4s, lent 1: the 2 left by 6s.
					assert.Equal(t, 6*time.Second, time.Since(start), "aging %v", aging)
					cancel()
				})
				synctest.Wait()
				wg.Go(func() {
					for {
						time.Sleep(4 * time.Second)
						if b.Wait(ctx, 1) != nil {
							return
						}
					}
				})
				wg.Wait()
			})
		})
	}

	// What the large one saved beyond the burst is its own: three
	// interactive requests arriving together get the burst at once, and
	// the rest at the rate, not its savings in one go.
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		g.wait(batch, b, "large", 5)
		time.Sleep(4 * time.Second)
		g.wait(interactive, b, "i1", 1)
		g.wait(interactive, b, "i2", 1)
		g.wait(interactive, b, "i3", 1)
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"i1", "i2", "i3", "large"}, g.Order())
		assert.Equal(t, 4*time.Second, g.When("i1"), "the burst, at once")
		assert.Equal(t, 5*time.Second, g.When("i2"), "then at the rate")
		assert.Equal(t, 6*time.Second, g.When("i3"))
		assert.Equal(t, 8*time.Second, g.When("large"), "3 of its 4 saved kept: 8 tokens in 8s")
	})
	// A slower rate refuses the waits it makes late counting what each
	// saved: the large one, passed with 3 of its 5 saved, still fits.
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		ctx, cancel := context.WithTimeout(batch, 8*time.Second)
		defer cancel()
		g.wait(ctx, b, "large", 5)
		time.Sleep(4 * time.Second)
		g.wait(interactive, b, "i1", 1)
		g.wait(interactive, b, "i2", 1)
		time.Sleep(500 * time.Millisecond)
		b.SetRate(bucket.PerSecond(0.9))
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"i1", "i2", "large"}, g.Order())
		assert.NoError(t, g.Err("large"))
		assert.Equal(t, 7277777778*time.Nanosecond, g.When("large"), "i2 at 5s, then its last 2 at 0.9/s")
	})
}

// A slower rate refuses at once a wait it makes late behind a large one
// that a higher level passed: what the large one saved is counted for it
// alone, not again for the waits behind it on its level.
func TestASlowerRateRefusesAWaitBehindALargeOnePassed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0)) // burst 1
		g := newGrants()
		ctx, cancel := context.WithTimeout(batch, 8200*time.Millisecond)
		defer cancel()
		g.wait(batch, b, "large", 5)
		g.wait(ctx, b, "small", 1) // due at 6s, then at 8s behind the two below
		time.Sleep(4 * time.Second)
		g.wait(interactive, b, "i1", 1) // passes the large one, which keeps 3 of its 4 saved
		g.wait(interactive, b, "i2", 1)
		time.Sleep(500 * time.Millisecond)
		b.SetRate(bucket.PerSecond(0.9)) // i2 at 5.06s, large at 7.28s, small at 8.39s: late
		synctest.Wait()
		assert.ErrorIs(t, g.Err("small"), transport.ErrDeadline)
		assert.Equal(t, 4500*time.Millisecond, g.When("small"), "refused when the slower rate made it late")
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"i1", "small", "i2", "large"}, g.Order())
		assert.Equal(t, 7277777778*time.Nanosecond, g.When("large"))
	})
}

// A wait's turn, foretold as it queues, counts what an older large wait
// of a lower level saved before it was passed: when aging gives that wait
// its turn ahead of the new one, it takes only the rest of its tokens,
// and a deadline the new wait meets is not refused.
func TestAWaitCountsWhatAnOlderLargeOneSavedBeforeItsAgedTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0)) // burst 1
		g := newGrants()
		g.wait(batch, b, "large", 5)
		time.Sleep(4 * time.Second)
		// The first interactive wait passes the large one, which keeps 3
		// of its 4 saved; after 45 interactive grants it is owed its turn
		// (a tenth of the tokens), and takes the 2 it lacks.
		for i := range 46 {
			g.wait(interactive, b, fmt.Sprint("i", i+1), 1)
		}
		ctx, cancel := context.WithTimeout(interactive, 50*time.Second)
		defer cancel()
		g.wait(ctx, b, "last", 1) // due at 52s, 48s from now: fits
		time.Sleep(time.Minute)
		assert.Equal(t, 48*time.Second, g.When("i45"))
		assert.Equal(t, 50*time.Second, g.When("large"))
		assert.Equal(t, 51*time.Second, g.When("i46"))
		assert.NoError(t, g.Err("last"))
		assert.Equal(t, 52*time.Second, g.When("last"))
	})
}

// A pause foretells a lower wait's turn with the reserve kept from it: at
// the pause's end the bucket has the one token its head needs, and a lower
// head waits a token more for the reserve. A wait whose deadline falls
// before that is refused when the pause comes, not at its deadline, and
// the wait behind it moves up to the turn it would have had.
func TestAPauseForetellsALowerWaitBehindTheReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0),
			bucket.WithReserve(transport.PriorityInteractive, 1, time.Minute))
		start := time.Now()
		require.NoError(t, b.Wait(interactive, 1)) // at 100ms; the reserve holds
		g := newGrants()
		g.start = start
		first, cancel := context.WithDeadline(batch, start.Add(1150*time.Millisecond))
		defer cancel()
		second, cancel2 := context.WithDeadline(batch, start.Add(1250*time.Millisecond))
		defer cancel2()
		g.wait(first, b, "first", 1)   // due at 300ms: accepted
		g.wait(second, b, "second", 1) // due at 400ms: accepted
		b.Pause(start.Add(1100 * time.Millisecond))
		time.Sleep(2 * time.Second)
		// At 1.1s the bucket holds one token; a batch wait needs two.
		assert.ErrorIs(t, g.Err("first"), transport.ErrDeadline, "due at 1.2s, past its 1.15s")
		assert.Equal(t, 100*time.Millisecond, g.When("first"), "refused when the pause came, not at its deadline")
		assert.NoError(t, g.Err("second"), "due at 1.2s once the first is refused")
		assert.Equal(t, 1200*time.Millisecond, g.When("second"))
	})
}

// A reserve that lapses during a pause keeps nothing at its end: a lower
// wait queued before the pause, and one that comes during it, are both
// foretold, and granted, as if there were none, the first at the pause's
// end and the second a token later.
func TestAReserveLapsingDuringAPauseIsNotForetold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0),
			bucket.WithReserve(transport.PriorityInteractive, 1, 500*time.Millisecond))
		start := time.Now()
		require.NoError(t, b.Wait(interactive, 1)) // at 100ms; the reserve holds until 600ms
		g := newGrants()
		g.start = start
		first, cancel := context.WithDeadline(batch, start.Add(1150*time.Millisecond))
		defer cancel()
		g.wait(first, b, "first", 1) // due at 300ms
		b.Pause(start.Add(1100 * time.Millisecond))
		synctest.Wait()
		second, cancel2 := context.WithDeadline(batch, start.Add(1250*time.Millisecond))
		defer cancel2()
		g.wait(second, b, "second", 1)
		time.Sleep(2 * time.Second)
		assert.NoError(t, g.Err("first"))
		assert.Equal(t, 1100*time.Millisecond, g.When("first"), "the reserve lapsed at 600ms")
		assert.NoError(t, g.Err("second"), "due at 1.2s, in time")
		assert.Equal(t, 1200*time.Millisecond, g.When("second"))
	})
}

// A lower wait is foretold with the reserve kept from it only until the
// reserve lapses: one that comes after the reserve's hold is granted
// without it, and a deadline that fits that turn is met.
func TestAReserveIsForetoldOnlyUntilItLapses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0),
			bucket.WithReserve(transport.PriorityInteractive, 1, 200*time.Millisecond))
		start := time.Now()
		require.NoError(t, b.Wait(interactive, 1)) // at 100ms; the reserve holds until 300ms
		g := newGrants()
		g.start = start
		for _, name := range []string{"1", "2", "3", "4"} {
			g.wait(batch, b, name, 1) // 300ms, 300ms, 400ms, 500ms
		}
		last, cancel := context.WithDeadline(batch, start.Add(650*time.Millisecond))
		defer cancel()
		g.wait(last, b, "5", 1)
		time.Sleep(time.Second)
		assert.Equal(t, 300*time.Millisecond, g.When("2"), "the reserve lapsed at 300ms")
		assert.Equal(t, 500*time.Millisecond, g.When("4"))
		assert.NoError(t, g.Err("5"), "due at 600ms, in time")
		assert.Equal(t, 600*time.Millisecond, g.When("5"))
	})
}

// A higher wait that aging serves after an older lower one waits for it,
// and so for the reserve kept from it: it is foretold then, and refused
// at once when its deadline falls before.
func TestAHigherWaitBehindAnAgedLowerOneIsForetoldAfterTheReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0), bucket.WithAging(1),
			bucket.WithReserve(transport.PriorityInteractive, 2, time.Minute))
		start := time.Now()
		require.NoError(t, b.Wait(interactive, 1)) // at 100ms; the reserve holds
		g := newGrants()
		g.start = start
		g.wait(batch, b, "batch", 1) // due at 400ms: 3 tokens, 2 of them kept
		hurried, cancel := context.WithDeadline(interactive, start.Add(350*time.Millisecond))
		defer cancel()
		g.wait(hurried, b, "hurried", 1)
		patient, cancel2 := context.WithDeadline(interactive, start.Add(450*time.Millisecond))
		defer cancel2()
		g.wait(patient, b, "patient", 1)
		time.Sleep(time.Second)
		assert.Equal(t, 400*time.Millisecond, g.When("batch"))
		assert.ErrorIs(t, g.Err("hurried"), transport.ErrDeadline, "after the batch, at 400ms")
		assert.Equal(t, 100*time.Millisecond, g.When("hurried"), "refused at once, not at its deadline")
		assert.NoError(t, g.Err("patient"))
		assert.Equal(t, 400*time.Millisecond, g.When("patient"), "from the reserve the batch waited for")
	})
}

// A wait that passes a head larger than the burst finds the bucket's
// burst, no more (the head keeps what it saved beyond it): it is foretold
// from there, and refused at once when its deadline falls before.
func TestAWaitPassingALargeHeadIsForetoldFromTheBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithBurst(1), bucket.WithInitial(0))
		g := newGrants()
		time.Sleep(100 * time.Millisecond)
		g.wait(batch, b, "large", 3) // due at 300ms
		time.Sleep(50 * time.Millisecond)
		// 1.5 tokens saved, the burst is 1: due at 350ms.
		hurried, cancel := context.WithDeadline(context.Background(), g.start.Add(340*time.Millisecond))
		defer cancel()
		g.wait(hurried, b, "hurried", 3)
		patient, cancel2 := context.WithDeadline(context.Background(), g.start.Add(360*time.Millisecond))
		defer cancel2()
		g.wait(patient, b, "patient", 3)
		time.Sleep(2 * time.Second)
		assert.ErrorIs(t, g.Err("hurried"), transport.ErrDeadline)
		assert.Equal(t, 150*time.Millisecond, g.When("hurried"), "refused at once, not at its deadline")
		assert.NoError(t, g.Err("patient"))
		assert.Equal(t, 350*time.Millisecond, g.When("patient"))
		assert.Equal(t, 600*time.Millisecond, g.When("large"), "the half token it saved beyond the burst kept")
	})
}
