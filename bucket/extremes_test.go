package bucket_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// watchdog fails the test binary, in real time, if what it guards does not
// return: a bubble whose timer fires at once for ever never lets virtual
// time move, and would otherwise hang until the test timeout. Call it
// outside the bubble.
func watchdog(t *testing.T) (stop func()) {
	name := t.Name()
	timer := time.AfterFunc(30*time.Second, func() { panic(name + ": the bucket's timer spins") })
	return func() { timer.Stop() }
}

// A wait that no timer could reach is refused at once, whatever the
// context; one the bucket can reach is served at its time.
func TestAWaitBeyondMaxWaitIsRefusedAtOnce(t *testing.T) {
	defer watchdog(t)()
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1))
		require.True(t, b.TryTake(1))
		start := time.Now()
		assert.ErrorIs(t, b.Wait(context.Background(), math.MaxInt), bucket.ErrTooLong)
		// 1e11 tokens at one a second: 3,170 years.
		assert.ErrorIs(t, b.Wait(context.Background(), 1e11), bucket.ErrTooLong)
		assert.Zero(t, time.Since(start), "refused at once")
		assert.Zero(t, b.Waiting(), "the refused waits hold no place")
		require.NoError(t, b.Wait(context.Background(), 1))
		assert.Equal(t, time.Second, time.Since(start), "the bucket goes on as before")

		slow := bucket.New(bucket.PerSecond(1e-12))
		require.True(t, slow.TryTake(1))
		assert.ErrorIs(t, slow.Wait(context.Background(), 1e6), bucket.ErrTooLong)
		start = time.Now()
		require.NoError(t, slow.Wait(context.Background(), 1))
		assert.Equal(t, bucket.MaxInterval, time.Since(start), "one token every MaxInterval")
	})
}

// A queued wait that a slower rate pushes beyond MaxWait keeps its place:
// the timer waits as long as a timer can, instead of firing at once for
// ever, and the wait still ends with its context.
func TestAQueuePushedBeyondMaxWaitDoesNotSpin(t *testing.T) {
	defer watchdog(t)()
	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Wait(ctx, 1e6) }() // due in 11.6 days
		synctest.Wait()
		require.Equal(t, 1, b.Waiting())
		b.SetRate(bucket.PerSecond(1e-12)) // now 274,000 years away
		time.Sleep(time.Hour)
		assert.Equal(t, 1, b.Waiting(), "still queued")
		cancel()
		assert.ErrorIs(t, <-done, context.Canceled)
		assert.Zero(t, b.Waiting())
	})
}

// A rate too slow for a float's nanoseconds is raised to one token every
// MaxInterval: it paces, and reports numbers, not NaN or everything at once.
func TestARateSlowerThanMaxIntervalPacesAtIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, r := range []bucket.Rate{bucket.PerSecond(1e-300), bucket.PerSecond(5e-324), bucket.Every(200 * 365 * 24 * time.Hour)} {
			b := bucket.New(r)
			assert.InDelta(t, 1/bucket.MaxInterval.Seconds(), b.Rate().PerSecond(), 1e-20, "%v", r)
			assert.True(t, b.TryTake(1), "%v: the first request passes", r)
			assert.False(t, b.TryTake(1), "%v: the next waits", r)
			assert.Zero(t, b.Tokens(), "%v", r)
			time.Sleep(bucket.MaxInterval)
			assert.InDelta(t, 1, b.Tokens(), 1e-9, "%v", r)
			assert.True(t, b.TryTake(1), "%v", r)
		}
		b := bucket.New(bucket.PerSecond(1))
		b.SetRate(bucket.PerSecond(1e-300))
		assert.InDelta(t, 1/bucket.MaxInterval.Seconds(), b.Rate().PerSecond(), 1e-20)
		assert.False(t, math.IsNaN(b.Tokens()))
	})
}

// A new bucket lets its first request through at once, whatever its rate
// and whenever that request comes: float rounding must not delay it.
func TestTheFirstRequestOfANewBucketPassesAtAnyRate(t *testing.T) {
	for _, r := range []bucket.Rate{
		bucket.Every(200 * 24 * time.Hour),
		bucket.Every(5 * 365 * 24 * time.Hour),
		bucket.PerSecond(1e-12),
		bucket.Every(bucket.MaxInterval),
		bucket.PerSecond(3),
		bucket.PerMinute(7),
	} {
		synctest.Test(t, func(t *testing.T) {
			for d := range 64 {
				b := bucket.New(r)
				time.Sleep(time.Duration(d))
				assert.True(t, b.TryTake(1), "%v, %dns after New", r, d)
			}
		})
	}
}

// A wait due exactly at its deadline is refused at once, every time: a
// grant at the deadline itself is no use to a request whose context ends
// then.
func TestAWaitDueAtItsDeadlineIsRefusedAtOnce(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			b := bucket.New(bucket.PerSecond(1), bucket.WithInitial(0))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			err := b.Wait(ctx, 1) // due at 1s, the deadline
			assert.ErrorIs(t, err, transport.ErrDeadline)
			assert.Zero(t, time.Since(start), "refused at once")
			assert.Zero(t, b.Waiting())

			// Due a nanosecond before the deadline: served.
			ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second+1)
			defer cancel2()
			assert.NoError(t, b.Wait(ctx2, 1))
			assert.Equal(t, time.Second, time.Since(start))
		})
	}
}

// A queued wait that a slower rate makes due exactly at its deadline is
// refused then, not left to race its context.
func TestAQueuedWaitMadeDueAtItsDeadlineIsRefused(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			b := bucket.New(bucket.PerSecond(2), bucket.WithInitial(0))
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			g := newGrants()
			g.wait(ctx, b, "w", 1) // due at 500ms
			b.SetRate(bucket.PerSecond(1))
			synctest.Wait()
			assert.ErrorIs(t, g.Err("w"), transport.ErrDeadline)
			assert.Zero(t, g.When("w"), "refused when the rate made it due at the deadline")
		})
	}
}

// Every(0) is the infinite rate, as in golang.org/x/time/rate, and so is
// Every of a negative duration: no limit, though pauses still hold.
func TestEveryZeroIsUnlimited(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second, math.MinInt64} {
		r := bucket.Every(d)
		assert.True(t, r.Known(), "%v", d)
		assert.True(t, r.Unlimited(), "%v", d)
		assert.True(t, math.IsInf(r.PerSecond(), 1), "%v", d)
		assert.Equal(t, "unlimited", r.String())
	}
	assert.False(t, bucket.Every(time.Nanosecond).Unlimited())
	assert.True(t, bucket.PerSecond(math.Inf(1)).Unlimited())

	synctest.Test(t, func(t *testing.T) {
		b := bucket.New(bucket.Every(0))
		assert.True(t, b.Rate().Unlimited())
		for i := range 1000 {
			require.True(t, b.TryTake(1), "take %d", i)
		}
		assert.True(t, b.TryTake(1e9))
		assert.NoError(t, b.Wait(context.Background(), math.MaxInt))
		assert.True(t, math.IsInf(b.Tokens(), 1))

		start := time.Now()
		b.Pause(start.Add(time.Second))
		assert.False(t, b.TryTake(1), "a pause holds an unlimited bucket")
		assert.Zero(t, b.Tokens())
		require.NoError(t, b.Wait(context.Background(), 5))
		assert.Equal(t, time.Second, time.Since(start))
		assert.True(t, b.TryTake(1))

		b.SetRate(bucket.PerSecond(10))
		assert.InDelta(t, 10, b.Tokens(), 1e-9, "leaving the infinite rate, the bucket holds its burst")
		assert.InDelta(t, 10, b.Burst(), 1e-9)
		b.SetRate(bucket.Every(-time.Second))
		assert.True(t, b.Rate().Unlimited())
		assert.True(t, b.TryTake(100))
	})
}

// Limit on an unlimited bucket sends at once, obeys the server's pause
// after a 429, and stays unlimited.
func TestLimitOnAnUnlimitedBucketObeysPauses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		base := transport.Func(func(*http.Request) (*http.Response, error) {
			calls++
			resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}
			if calls == 3 {
				resp.StatusCode = http.StatusTooManyRequests
				resp.Header.Set("X-Ratelimit-Reset", "2")
			}
			return resp, nil
		})
		b := bucket.New(bucket.Every(0))
		rt := bucket.Limit(b)(base)
		start := time.Now()
		for i := range 4 {
			req, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			transport.Drain(resp)
			if i < 3 {
				assert.Zero(t, time.Since(start), "request %d sent at once", i)
			}
		}
		assert.Equal(t, 2*time.Second, time.Since(start), "the 429's reset held the fourth")
		assert.True(t, b.Rate().Unlimited(), "a 429 with nothing measured leaves it unlimited")
	})
}
