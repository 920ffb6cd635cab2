package bucket_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// grants records when each of a set of concurrent Waits returned.
type grants struct {
	mu    sync.Mutex
	start time.Time
	at    map[string]time.Duration
	err   map[string]error
	order []string
}

func newGrants() *grants {
	return &grants{start: time.Now(), at: map[string]time.Duration{}, err: map[string]error{}}
}

// wait starts a Wait of n tokens named name, and lets it join the queue
// before returning, so that the order of calls is the order of arrival.
func (g *grants) wait(ctx context.Context, b *bucket.Bucket, name string, n int) {
	go func() {
		err := b.Wait(ctx, n)
		g.mu.Lock()
		defer g.mu.Unlock()
		g.at[name] = time.Since(g.start)
		g.err[name] = err
		g.order = append(g.order, name)
	}()
	synctest.Wait()
}

func (g *grants) When(name string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.at[name]
}

func (g *grants) Err(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err[name]
}

func (g *grants) Order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.order...)
}

func TestNewBucketPassesOneRequestThenPaces(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10))
		assert.True(t, b.TryTake(1), "the first request passes at once")
		assert.False(t, b.TryTake(1), "but the bucket does not start full")
		time.Sleep(100 * time.Millisecond)
		assert.True(t, b.TryTake(1))
		assert.False(t, b.TryTake(1))
	})
}

func TestIdleBucketRefillsToBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerMinute(600)) // burst: one second, 10 tokens
		require.InDelta(t, 10, b.Burst(), 1e-9)
		time.Sleep(time.Hour)
		assert.InDelta(t, 10, b.Tokens(), 1e-9)
		for i := range 10 {
			assert.True(t, b.TryTake(1), "token %d", i)
		}
		assert.False(t, b.TryTake(1))
		assert.InDelta(t, 0, b.Tokens(), 1e-9)
	})
}

func TestBurstAndInitialOptions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(2), bucket.WithInitial(5), bucket.WithBurst(5))
		assert.InDelta(t, 5, b.Burst(), 1e-9)
		assert.InDelta(t, 5, b.Tokens(), 1e-9)
		assert.True(t, b.TryTake(5))
		assert.False(t, b.TryTake(1))
		time.Sleep(time.Minute)
		assert.InDelta(t, 5, b.Tokens(), 1e-9, "a fixed burst caps the refill")
		b.SetRate(bucket.PerSecond(100))
		assert.InDelta(t, 5, b.Burst(), 1e-9, "a fixed burst does not follow the rate")

		slow := bucket.New(bucket.PerMinute(30)) // half a token a second
		assert.InDelta(t, 1, slow.Burst(), 1e-9, "the burst is at least one token")
		full := bucket.New(bucket.PerSecond(10), bucket.WithInitial(100))
		assert.InDelta(t, 10, full.Tokens(), 1e-9, "initial tokens are capped at the burst")
	})
}

func TestWaitPacesAtTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(4))
		start := time.Now()
		for range 9 {
			require.NoError(t, b.Wait(context.Background(), 1))
		}
		assert.Equal(t, 2*time.Second, time.Since(start), "one free, then 8 at 250ms")
	})
}

func TestFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithBurst(10), bucket.WithInitial(0))
		g := newGrants()
		g.wait(context.Background(), b, "large", 5)
		g.wait(context.Background(), b, "small", 1)
		assert.False(t, b.TryTake(1), "TryTake does not jump the queue")
		assert.Equal(t, 2, b.Waiting())
		time.Sleep(10 * time.Second)
		assert.Equal(t, []string{"large", "small"}, g.Order())
		assert.Equal(t, 5*time.Second, g.When("large"))
		assert.Equal(t, 6*time.Second, g.When("small"), "the small one waits behind the large one")
	})
}

func TestLargeRequestIsNotStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// A stream of small requests, each asking as soon as the last passed.
		var small sync.WaitGroup
		small.Add(4)
		for range 4 {
			go func() {
				defer small.Done()
				for b.Wait(ctx, 1) == nil {
				}
			}()
		}
		time.Sleep(time.Second)
		start := time.Now()
		require.NoError(t, b.Wait(context.Background(), 8))
		// At most the 4 small requests queued before it, then its own 8.
		assert.LessOrEqual(t, time.Since(start), 1200*time.Millisecond)
		cancel()
		small.Wait()
	})
}

func TestRequestLargerThanTheBurstWaitsItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(2)) // burst 2
		assert.False(t, b.TryTake(5), "TryTake never passes more than a burst")
		time.Sleep(time.Minute) // full: 2 tokens
		start := time.Now()
		require.NoError(t, b.Wait(context.Background(), 5))
		assert.Equal(t, 1500*time.Millisecond, time.Since(start), "3 tokens beyond the 2 it holds")
		start = time.Now()
		require.NoError(t, b.Wait(context.Background(), 5))
		assert.Equal(t, 2500*time.Millisecond, time.Since(start), "from empty: its full share")
	})
}

func TestWaitPastDeadlineIsRefusedAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		require.True(t, b.TryTake(1))
		g := newGrants()
		g.wait(context.Background(), b, "first", 1) // due at 1s
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := b.Wait(ctx, 1) // would be due at 2s
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, transport.ErrDeadline)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.Equal(t, 1, b.Waiting(), "the refused wait holds no place")

		ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second+time.Millisecond)
		defer cancel2()
		assert.NoError(t, b.Wait(ctx2, 1), "a wait that ends before the deadline is served")
		assert.Equal(t, 2*time.Second, time.Since(start))
	})
}

func TestCancelledWaiterGivesBackItsPlace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		headCtx, cancelHead := context.WithCancel(context.Background())
		midCtx, cancelMid := context.WithCancel(context.Background())
		g.wait(headCtx, b, "head", 3)  // due at 3s
		g.wait(midCtx, b, "middle", 2) // due at 5s
		g.wait(context.Background(), b, "last", 1)
		require.Equal(t, 3, b.Waiting())
		time.Sleep(500 * time.Millisecond)
		cancelMid()
		synctest.Wait()
		assert.Equal(t, 2, b.Waiting())
		time.Sleep(500 * time.Millisecond)
		cancelHead()
		synctest.Wait()
		// The head's saved second goes to the last waiter: 1 token at 1s,
		// the instant the head gave up (the two end together, in either
		// order).
		order := g.Order()
		require.Len(t, order, 3)
		assert.Equal(t, "middle", order[0])
		assert.ElementsMatch(t, []string{"head", "last"}, order[1:])
		assert.Equal(t, time.Second, g.When("head"))
		assert.ErrorIs(t, g.Err("middle"), context.Canceled)
		assert.ErrorIs(t, g.Err("head"), context.Canceled)
		assert.NoError(t, g.Err("last"))
		assert.Equal(t, time.Second, g.When("last"))
		assert.Zero(t, b.Waiting())
	})
}

func TestCancelReturnsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		require.True(t, b.TryTake(1))
		cause := errors.New("shutting down")
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() {
			time.Sleep(100 * time.Millisecond)
			cancel(cause)
		}()
		assert.ErrorIs(t, b.Wait(ctx, 1), cause)
		assert.ErrorIs(t, b.Wait(ctx, 1), cause, "a done context is refused before taking")
		assert.InDelta(t, 0.1, b.Tokens(), 1e-9, "the cancelled waits took nothing")
	})
}

func TestPauseHoldsEveryWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10))
		time.Sleep(time.Second) // full
		start := time.Now()
		b.Pause(start.Add(3 * time.Second))
		assert.False(t, b.TryTake(1))
		assert.Zero(t, b.Tokens())
		b.Pause(start.Add(time.Second))
		g := newGrants()
		for _, name := range []string{"a", "b", "c"} {
			g.wait(context.Background(), b, name, 1)
		}
		time.Sleep(5 * time.Second)
		assert.Equal(t, []string{"a", "b", "c"}, g.Order())
		assert.Equal(t, 3*time.Second, g.When("a"), "a shorter pause does not shorten a longer one")
		assert.Equal(t, 3100*time.Millisecond, g.When("b"), "paced from the end of the pause, no saved burst")
		assert.Equal(t, 3200*time.Millisecond, g.When("c"))
		b.Pause(start) // in the past
		assert.True(t, b.TryTake(1))
	})
}

// A waiter larger than the burst, queued when a pause or a server window
// ends, is given the first request's tokens from that end and saves the
// rest from there, as its turn was foretold: it is granted then, not after
// saving its excess twice, and a deadline that fitted still fits.
func TestALargeWaiterSavesFromTheEndOfAPause(t *testing.T) {
	for name, hold := range map[string]func(b *bucket.Bucket, until time.Time){
		"pause":  func(b *bucket.Bucket, until time.Time) { b.Pause(until) },
		"window": func(b *bucket.Bucket, until time.Time) { b.SetRemaining(0, until) },
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0)) // burst 1
				ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
				defer cancel()
				g := newGrants()
				g.wait(ctx, b, "large", 3)
				hold(b, time.Now().Add(time.Second)) // at 1s: the burst, then 2 tokens more
				time.Sleep(2 * time.Second)
				next, cancel := context.WithTimeout(context.Background(), 2500*time.Millisecond)
				defer cancel()
				g.wait(next, b, "next", 1) // due at 4s: fits
				time.Sleep(10 * time.Second)
				assert.NoError(t, g.Err("large"))
				assert.Equal(t, 3*time.Second, g.When("large"))
				assert.NoError(t, g.Err("next"))
				assert.Equal(t, 4*time.Second, g.When("next"))
			})
		})
	}
	// A slower rate set after the pause plays the large waiter's turn
	// forward from the pause's end too: due at 3.22s, it fits its
	// deadline and is not refused.
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		g := newGrants()
		g.wait(ctx, b, "large", 3)
		b.Pause(time.Now().Add(time.Second))
		time.Sleep(2 * time.Second)
		b.SetRate(bucket.PerSecond(0.9))
		time.Sleep(10 * time.Second)
		assert.NoError(t, g.Err("large"))
		assert.Equal(t, 3222222223*time.Nanosecond, g.When("large"))
	})
}

// The wait behind a waiter larger than the burst, queued when a pause
// comes, is foretold from the pause's end, where the large one is given
// the burst and saves the rest: due at 4s, it fits its 4.5s and is kept.
// The pause used to settle the large one at its turn instead, saving its
// excess twice, and refused the wait behind it, foretold at 5s.
func TestAPauseForetellsTheWaitBehindALargeWaiterFromItsEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0)) // burst 1
		g := newGrants()
		g.wait(context.Background(), b, "large", 3)
		next, cancel := context.WithTimeout(context.Background(), 4500*time.Millisecond)
		defer cancel()
		g.wait(next, b, "next", 1) // due at 4s
		b.Pause(time.Now().Add(time.Second))
		time.Sleep(10 * time.Second)
		assert.NoError(t, g.Err("large"))
		assert.Equal(t, 3*time.Second, g.When("large"), "the burst at 1s, then 2 tokens more")
		assert.NoError(t, g.Err("next"), "due at 4s, in time")
		assert.Equal(t, 4*time.Second, g.When("next"))
	})
}

func TestPauseRefusesWaitersItPushesPastTheirDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		require.True(t, b.TryTake(1))
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second+time.Millisecond)
		defer cancel()
		g := newGrants()
		g.wait(context.Background(), b, "patient", 1)
		g.wait(ctx, b, "hurried", 1) // due at 2s: fits
		time.Sleep(100 * time.Millisecond)
		b.Pause(time.Now().Add(5 * time.Second))
		synctest.Wait()
		assert.ErrorIs(t, g.Err("hurried"), context.DeadlineExceeded)
		assert.Equal(t, 100*time.Millisecond, g.When("hurried"), "refused when the pause made it late")
		time.Sleep(10 * time.Second)
		assert.NoError(t, g.Err("patient"))
		assert.Equal(t, 5100*time.Millisecond, g.When("patient"))
	})
}

func TestSetRateAppliesToQueuedWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		g := newGrants()
		for _, name := range []string{"a", "b", "c"} {
			g.wait(context.Background(), b, name, 1)
		}
		time.Sleep(500 * time.Millisecond) // half a token saved
		b.SetRate(bucket.PerSecond(10))
		assert.Equal(t, bucket.PerSecond(10), b.Rate())
		time.Sleep(time.Second)
		// The half token becomes 5 tokens' worth of time at the new rate:
		// a is due 50ms later, then every 100ms.
		assert.Equal(t, 550*time.Millisecond, g.When("a"))
		assert.Equal(t, 650*time.Millisecond, g.When("b"))
		assert.Equal(t, 750*time.Millisecond, g.When("c"))

		b.SetRate(bucket.Rate{}) // unknown: ignored
		assert.Equal(t, bucket.PerSecond(10), b.Rate())
	})
}

func TestSlowerRateRefusesWaitersPastTheirDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(10), bucket.WithInitial(0))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		g := newGrants()
		g.wait(context.Background(), b, "a", 1)
		g.wait(ctx, b, "b", 1)
		b.SetRate(bucket.PerSecond(1))
		synctest.Wait()
		assert.ErrorIs(t, g.Err("b"), context.DeadlineExceeded)
		time.Sleep(2 * time.Second)
		assert.Equal(t, time.Second, g.When("a"))
	})
}

func TestSetRemainingSpendsTheServerWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		start := time.Now()
		b.SetRemaining(5, start.Add(10*time.Second))
		assert.InDelta(t, 5, b.Tokens(), 1e-9)
		for i := range 5 {
			assert.True(t, b.TryTake(1), "window token %d, faster than the rate", i)
		}
		assert.False(t, b.TryTake(1), "no more than the server said remains")
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, 10*time.Second, time.Since(start), "then nothing until the window's end")
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, 11*time.Second, time.Since(start), "then the bucket's own pace")

		b.SetRemaining(3, start) // in the past: no news
		assert.False(t, b.TryTake(1))
	})
}

func TestRateString(t *testing.T) {
	for _, tc := range []struct {
		r    bucket.Rate
		want string
		ps   float64
	}{
		{bucket.PerMinute(600), "600/min", 10},
		{bucket.PerSecond(2.5), "2.5/s", 2.5},
		{bucket.Rate{Tokens: 3}, "3/s", 3},
		{bucket.Rate{Tokens: 7200, Per: time.Hour}, "7200/h", 2},
		{bucket.Every(2 * time.Second), "1/2s", 0.5},
		{bucket.Rate{}, "unknown", 0},
		{bucket.Rate{Tokens: -1, Per: time.Second}, "unknown", 0},
		{bucket.Rate{Tokens: 1, Per: -time.Second}, "unknown", 0},
		{bucket.Rate{Tokens: math.NaN()}, "unknown", 0},
	} {
		assert.Equal(t, tc.want, tc.r.String())
		assert.InDelta(t, tc.ps, tc.r.PerSecond(), 1e-9, tc.want)
	}
}

func TestUnknownRateStartsAtOnePerSecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.Rate{})
		assert.Equal(t, bucket.PerSecond(1), b.Rate())
	})
}

func TestNonPositiveWaitsPassAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		b.Pause(time.Now().Add(time.Hour))
		assert.True(t, b.TryTake(0))
		assert.NoError(t, b.Wait(context.Background(), 0))
	})
}

// A waiter whose context ends at the moment it is granted either goes,
// holding the token, or gives the token back: never both, never neither.
func TestGrantedAsTheContextEndsGivesBack(t *testing.T) {
	outcomes := map[bool]int{}
	for range 50 {
		synctest.Test(t, func(t *testing.T) {
			b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
			// Due at 1s, and cancelled at 1s: both happen at once. (A
			// deadline at 1s would refuse the wait at once.)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				time.Sleep(time.Second)
				cancel()
			}()
			err := b.Wait(ctx, 1)
			went := err == nil
			if !went {
				assert.ErrorIs(t, err, context.Canceled)
			}
			assert.NotEqual(t, went, b.TryTake(1), "the token is held or given back")
			outcomes[went]++
		})
	}
	t.Logf("went %d times, gave back %d times", outcomes[true], outcomes[false])
}
