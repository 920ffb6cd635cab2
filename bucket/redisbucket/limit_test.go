package redisbucket_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/transport"
)

// One replica's 429 reaches every replica through Redis: bucket.Limit in
// replica A pauses the key until the server's reset and lowers the rate;
// replica B, which saw nothing, is held by the pause and paced at the new
// rate.
func TestLimitSharesPauseAndRate(t *testing.T) {
	rdb := redisClient(t)
	key := testKey(t)
	a := bucket.New(bucket.PerSecond(20), bucket.WithStore(newStore(rdb), key))
	storeB := newStore(rdb)
	b := bucket.New(bucket.PerSecond(20), bucket.WithStore(storeB, key))

	refuse := transport.Func(func(req *http.Request) (*http.Response, error) {
		h := http.Header{}
		h.Set("x-ratelimit-reset", "1") // a bucket's next tokens, not a window: the rate is lowered
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Request: req,
			Body: io.NopCloser(strings.NewReader(`{"error":{"type":"dynamic_request_limited"}}`))}, nil
	})
	req, err := http.NewRequest(http.MethodGet, "http://api.test/v1/chat/completions", nil)
	require.NoError(t, err)
	resp, err := bucket.Limit(a)(refuse).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	lowered := a.Rate().PerSecond()
	require.Less(t, lowered, 20.0, "the 429 lowered A's rate")

	assert.False(t, b.TryTake(1), "B is paused by A's 429")
	assert.InDelta(t, lowered, b.Rate().PerSecond(), 1e-9, "B took A's lowered rate from Redis")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.Wait(ctx, 1)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "a wait that cannot end before the deadline: %v", err)
	assert.Less(t, time.Since(start), 400*time.Millisecond, "refused at once, not after waiting")

	r, err := storeB.Reserve(context.Background(), key, 1, 0, bucket.Shape{PerSecond: 20, Burst: 20})
	require.NoError(t, err)
	assert.False(t, r.OK)
	assert.InDelta(t, float64(time.Second), float64(r.Wait), float64(300*time.Millisecond), "held until the reset")
	assert.InDelta(t, lowered, r.Rate, 1e-9)
}

// A caller that gives up while the reserve script is on its way loses
// nothing: Redis may have run the script, so the store lets it finish and
// gives back what it reserved. The hook plays a client whose context ends
// as Redis answers, which go-redis reports as the context's error.
func TestReserveCancelledInFlightGivesBack(t *testing.T) {
	rdb := redisClient(t)
	key := testKey(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var armed atomic.Bool
	rdb.AddHook(cancelOnAnswer{cancel: cancel, armed: &armed})
	store := newStore(rdb)
	r, err := store.Reserve(context.Background(), key, 1, -1, slow)
	require.NoError(t, err)
	require.True(t, r.OK)
	require.Zero(t, r.Wait, "the bucket's one token")

	armed.Store(true)
	_, err = store.Reserve(ctx, key, 1, -1, slow)
	armed.Store(false)
	require.ErrorIs(t, err, context.Canceled)

	r, err = store.Reserve(context.Background(), key, 1, -1, slow)
	require.NoError(t, err)
	assert.InDelta(t, float64(slowEvery), float64(r.Wait), float64(time.Second),
		"the slot reserved as its caller gave up was given back: one token's wait, not two")
}

// cancelOnAnswer is a go-redis hook that, while armed, cancels a context
// once Redis has answered a command, and then reports the command's own
// context's error if that context has ended, as go-redis does for a
// context that ends during a read.
type cancelOnAnswer struct {
	cancel context.CancelFunc
	armed  *atomic.Bool
}

func (h cancelOnAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h cancelOnAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.armed.Load() {
			h.cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		return err
	}
}

func (h cancelOnAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A Wait cancelled while it sleeps on its reservation gives the slot back,
// so the next caller, in any replica, gets it.
func TestWaitCancelledGivesBack(t *testing.T) {
	rdb := redisClient(t)
	key := testKey(t)
	store := newStore(rdb)
	b := bucket.New(bucket.Every(slowEvery), bucket.WithStore(store, key))
	require.NoError(t, b.Wait(context.Background(), 1), "a new bucket's first request passes")
	first, err := rdb.HGet(context.Background(), redisbucket.DefaultPrefix+key, "s").Int64()
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Wait(ctx, 1) }()
	// Its reservation is the key's second (the hash's field s, one past the
	// first's): from then on it sleeps, for a thousand seconds.
	require.Eventually(t, func() bool {
		s, err := rdb.HGet(context.Background(), redisbucket.DefaultPrefix+key, "s").Int64()
		return err == nil && s == first+1
	}, 5*time.Second, time.Millisecond)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)

	r, err := newStore(rdb).Reserve(context.Background(), key, 1, 0, slow)
	require.NoError(t, err)
	assert.InDelta(t, float64(slowEvery), float64(r.Wait), float64(time.Second), "the cancelled slot was given back: one token's wait, not two")
}
