package redisbucket

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket/internal/redistest"
)

// A store that serves many distinct keys keeps a bounded memory of them:
// the rates it saw in Redis, and the buckets it limits in process while
// Redis is unreachable.
func TestAStoreRemembersABoundedNumberOfKeys(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "local"}[down], func(t *testing.T) {
			var rdb *redis.Client
			if down {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				addr := ln.Addr().String()
				require.NoError(t, ln.Close())
				rdb = redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
				defer rdb.Close()
			} else {
				rdb = redistest.Client(t)
			}
			s := New(rdb, WithLogger(nil), WithPrefix(fmt.Sprintf("steady:test:%s:", t.Name())))
			shape := bucket.Shape{PerSecond: 1e6, Burst: 1}
			for i := range 2 * maxRemembered {
				_, err := s.Reserve(context.Background(), fmt.Sprint(i), 1, -1, shape)
				require.NoError(t, err)
			}
			require.Equal(t, down, s.Local())
			s.mu.Lock()
			defer s.mu.Unlock()
			assert.LessOrEqual(t, len(s.seen), maxRemembered)
			assert.LessOrEqual(t, len(s.local), maxRemembered)
		})
	}
}

// A step of the wall clock (an NTP correction, a resumed VM) changes
// nothing the store times in process: the in-process bucket's waits and
// the probes of Redis are timed on the monotonic clock, as a bucket in
// memory is. Stepped back an hour, the wall clock made each in-process
// reservation wait an hour, and held off the probe (so the return to
// the shared state) for as long.
func TestAWallClockStepDoesNotStallTheFallback(t *testing.T) {
	live := redistest.Client(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	require.NoError(t, ln.Close())
	defer dead.Close()
	s := New(dead, WithLogger(nil), WithProbe(20*time.Millisecond), WithShare(1))
	shape := bucket.Shape{PerSecond: 1e-3, Burst: 1} // a token every 1000 s

	first, err := s.Reserve(context.Background(), "k", 1, -1, shape)
	require.NoError(t, err)
	require.True(t, s.Local(), "Redis does not answer")
	require.Negative(t, first.ID, "reserved in process")
	s.c = live                                                              // Redis is back, for the next probe
	s.now = func() time.Time { return time.Now().Add(-time.Hour).Round(0) } // the wall clock steps back
	second, err := s.Reserve(context.Background(), "k", 1, -1, shape)
	require.NoError(t, err)
	require.Negative(t, second.ID, "reserved in process")
	assert.InDelta(t, float64(1000*time.Second), float64(second.Wait), float64(time.Second), "paced at the rate, not an hour later")

	time.Sleep(30 * time.Millisecond)
	_, err = s.Reserve(context.Background(), fmt.Sprintf("steady:test:%s:%d", t.Name(), time.Now().UnixNano()), 1, -1, shape)
	require.NoError(t, err)
	assert.False(t, s.Local(), "Redis is probed after the probe period, and answers")
}

// A Pause given a shape that is no rate and burst while Redis does not
// answer still limits the key in process: its bucket there is made at a
// token a second and a burst of one, not at a NaN or infinite burst, which
// refused every reservation or granted every one at once.
func TestAPauseWithNoShapeInAnOutageLeavesTheKeyLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	require.NoError(t, ln.Close())
	defer dead.Close()
	for name, bad := range map[string]bucket.Shape{
		"burst NaN": {PerSecond: 1, Burst: math.NaN()}, "burst Inf": {PerSecond: 1, Burst: math.Inf(1)},
		"rate Inf": {PerSecond: math.Inf(1), Burst: 1},
	} {
		t.Run(name, func(t *testing.T) {
			s := New(dead, WithLogger(nil), WithProbe(time.Hour), WithShare(1))
			s.Pause(context.Background(), "k", time.Now().Add(time.Millisecond), bad)
			require.True(t, s.Local())
			first := s.localBucket("k", bad).reserve(s.since()+float64(time.Second), 1, -1)
			second := s.localBucket("k", bad).reserve(s.since()+float64(time.Second), 1, -1)
			assert.True(t, first.OK && first.Wait == 0, "the first passes: %+v", first)
			assert.True(t, second.OK, "the second is granted: %+v", second)
			assert.InDelta(t, float64(time.Second), float64(second.Wait), float64(10*time.Millisecond), "a second later")
		})
	}
}

// cutConn is a connection to Redis that fails once cut is set, as every
// new one does: Redis unreachable.
type cutConn struct {
	net.Conn
	cut *atomic.Bool
}

func (c cutConn) Read(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, net.ErrClosed
	}
	return c.Conn.Read(p)
}

func (c cutConn) Write(p []byte) (int, error) {
	if c.cut.Load() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// A request that went local just as Redis answered again (its call was
// refused before the probe's answer came) leaves an in-process bucket
// behind; the next outage does not take it up, days later, at the rate
// Redis held in the last one, but starts from the rate Redis holds now,
// as every other key's fallback does.
func TestTheNextOutageStartsFromTheRateRedisHoldsThen(t *testing.T) {
	addr := redistest.Client(t).Options().Addr
	var cut atomic.Bool
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if cut.Load() {
				return nil, net.ErrClosed
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return cutConn{Conn: c, cut: &cut}, err
		}})
	defer rdb.Close()
	s := New(rdb, WithLogger(nil), WithProbe(time.Millisecond), WithShare(1), WithTimeout(2*time.Second),
		WithPrefix(fmt.Sprintf("steady:test:%s:%d:", t.Name(), time.Now().UnixNano())))
	ctx := context.Background()
	fast, slow := bucket.Shape{PerSecond: 1000, Burst: 1}, bucket.Shape{PerSecond: 1, Burst: 1}

	cut.Store(true)
	_, err := s.Reserve(ctx, "k", 1, -1, fast)
	require.NoError(t, err)
	require.True(t, s.Local(), "the first outage")
	cut.Store(false)
	time.Sleep(2 * time.Millisecond) // past the probe period
	_, err = s.Reserve(ctx, "other", 1, -1, fast)
	require.NoError(t, err)
	require.False(t, s.Local(), "Redis answers again")
	// The request that was refused Redis as it came back reserves in
	// process, from the bucket of the outage that just ended.
	s.localBucket("k", fast).reserve(s.since(), 1, -1)

	s.SetRate(ctx, "k", slow) // a 429 lowers the rate, in Redis
	require.False(t, s.Local())
	cut.Store(true) // the next outage
	first, err := s.Reserve(ctx, "k", 1, -1, fast)
	require.NoError(t, err)
	require.True(t, s.Local(), "the second outage")
	second, err := s.Reserve(ctx, "k", 1, -1, fast)
	require.NoError(t, err)
	assert.True(t, first.OK && second.OK)
	assert.InDelta(t, float64(time.Second), float64(second.Wait), float64(50*time.Millisecond),
		"paced at the rate Redis holds now, not the last outage's")
}

// A rate and a pause set in one outage, not yet written to Redis (the key
// was not reserved while Redis answered), hold in the next outage too:
// its in-process bucket starts from them, not from the rate Redis held
// before the first.
func TestARateAndPauseNotYetWrittenHoldInTheNextOutage(t *testing.T) {
	addr := redistest.Client(t).Options().Addr
	var cut atomic.Bool
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ContextTimeoutEnabled: true,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if cut.Load() {
				return nil, net.ErrClosed
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return cutConn{Conn: c, cut: &cut}, err
		}})
	defer rdb.Close()
	s := New(rdb, WithLogger(nil), WithProbe(time.Millisecond), WithShare(1), WithTimeout(2*time.Second),
		WithPrefix(fmt.Sprintf("steady:test:%s:%d:", t.Name(), time.Now().UnixNano())))
	ctx := context.Background()
	fast, slow := bucket.Shape{PerSecond: 1000, Burst: 1}, bucket.Shape{PerSecond: 1, Burst: 1}

	s.SetRate(ctx, "rate", fast)
	s.SetRate(ctx, "pause", fast)
	require.False(t, s.Local())
	cut.Store(true) // the first outage
	s.SetRate(ctx, "rate", slow)
	s.Pause(ctx, "pause", time.Now().Add(100*time.Second), fast)
	require.True(t, s.Local())
	cut.Store(false)
	time.Sleep(2 * time.Millisecond) // past the probe period
	_, err := s.Reserve(ctx, "other", 1, -1, fast)
	require.NoError(t, err)
	require.False(t, s.Local(), "Redis answers again, for other keys")
	cut.Store(true) // the next outage

	_, err = s.Reserve(ctx, "rate", 1, -1, fast)
	require.NoError(t, err)
	require.True(t, s.Local(), "the next outage")
	r, err := s.Reserve(ctx, "rate", 1, -1, fast)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Second), float64(r.Wait), float64(50*time.Millisecond), "paced at the rate set in the first outage")
	r, err = s.Reserve(ctx, "pause", 1, -1, fast)
	require.NoError(t, err)
	assert.InDelta(t, float64(100*time.Second), float64(r.Wait), float64(2*time.Second), "held by the pause set in the first outage")
}
