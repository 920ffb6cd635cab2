package transport_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/transport"
)

func TestSleepWaitsExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		assert.NoError(t, transport.Sleep(context.Background(), 1500*time.Millisecond))
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
	})
}

func TestSleepRefusesAWaitPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := transport.Sleep(ctx, 2*time.Second)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, transport.ErrDeadline)
		assert.Zero(t, time.Since(start), "refused at once, not after waiting")
		// A wait must end before the deadline: one that ends at it does not
		// fit.
		assert.True(t, transport.Fits(ctx, time.Second-1))
		assert.False(t, transport.Fits(ctx, time.Second))
		assert.False(t, transport.Fits(ctx, time.Second+1))
		assert.True(t, transport.Fits(context.Background(), time.Duration(math.MaxInt64)))
	})
}

// A sleep that would end exactly at the deadline is refused at once, every
// time, where it used to race the context's own timer.
func TestSleepEndingAtTheDeadlineIsRefused(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			start := time.Now()
			assert.ErrorIs(t, transport.Sleep(ctx, time.Second), transport.ErrDeadline)
			assert.Zero(t, time.Since(start), "refused at once")
			assert.NoError(t, transport.Sleep(ctx, time.Second-1))
		})
	}
}

func TestSleepCancelledMidWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(300 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		err := transport.Sleep(ctx, time.Minute)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 300*time.Millisecond, time.Since(start))
	})
}

func TestSleepReturnsCause(t *testing.T) {
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	assert.ErrorIs(t, transport.Sleep(ctx, 0), cause)
	assert.ErrorIs(t, transport.Sleep(ctx, time.Hour), cause)
}

func TestSleepZeroAndNegative(t *testing.T) {
	assert.NoError(t, transport.Sleep(context.Background(), 0))
	assert.NoError(t, transport.Sleep(context.Background(), -time.Second))
}

// SleepUntil waits until its instant however long ago it was found to fit
// the deadline, returns at once for an instant past, and ends with the
// context's cause.
func TestSleepUntil(t *testing.T) {
	t.Run("until the instant", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			end := time.Now().Add(time.Second - 1) // fits, by a nanosecond
			time.Sleep(10 * time.Millisecond)      // an answer drained meanwhile
			assert.False(t, transport.Fits(ctx, time.Second-1), "asked again, the wait would not fit")
			assert.NoError(t, transport.SleepUntil(ctx, end))
			assert.Equal(t, end, time.Now())
		})
	})
	t.Run("an instant past", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			assert.NoError(t, transport.SleepUntil(context.Background(), start.Add(-time.Second)))
			assert.Zero(t, time.Since(start))
		})
	})
	t.Run("the context's cause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cause := errors.New("shutting down")
			ctx, cancel := context.WithCancelCause(context.Background())
			go func() {
				time.Sleep(300 * time.Millisecond)
				cancel(cause)
			}()
			start := time.Now()
			assert.ErrorIs(t, transport.SleepUntil(ctx, start.Add(time.Minute)), cause)
			assert.Equal(t, 300*time.Millisecond, time.Since(start))
			assert.ErrorIs(t, transport.SleepUntil(ctx, start), cause, "done already")
		})
	})
}

// An error marked NotSent reads as the cause and unwraps to it, matches
// ErrNotSent, and is a timeout when the cause is one, for what reads
// Timeout without unwrapping.
func TestANotSentErrorKeepsItsCause(t *testing.T) {
	assert.NoError(t, transport.NotSent(nil))

	err := transport.NotSent(transport.ErrDeadline)
	assert.EqualError(t, err, transport.ErrDeadline.Error())
	assert.ErrorIs(t, err, transport.ErrNotSent)
	assert.ErrorIs(t, err, transport.ErrDeadline)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	var timeout interface{ Timeout() bool }
	if assert.ErrorAs(t, err, &timeout) {
		assert.True(t, timeout.Timeout())
	}

	cause := errors.New("queue full")
	err = transport.NotSent(cause)
	assert.ErrorIs(t, err, cause)
	assert.ErrorIs(t, err, transport.ErrNotSent)
	assert.False(t, err.(interface{ Timeout() bool }).Timeout())
	assert.NotErrorIs(t, cause, transport.ErrNotSent)
}
