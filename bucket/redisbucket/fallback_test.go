package redisbucket_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// logLines collects what a store logs, a line a record.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (l *logLines) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

func (l *logLines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// With Redis unreachable, the store limits in process at its share of the
// rate, says so once, and never waits longer than its timeout for Redis.
func TestFallbackWhenRedisIsDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
	defer rdb.Close()
	var logs logLines
	var events conformance.EventRecorder
	s := redisbucket.New(rdb, redisbucket.WithReplicas(4), redisbucket.WithLogger(logs.logger()),
		redisbucket.WithTimeout(50*time.Millisecond), redisbucket.WithProbe(time.Hour), redisbucket.WithEvents(events.Record))
	ctx := context.Background()
	shape := bucket.Shape{PerSecond: 4, Burst: 4} // a token a second locally

	start := time.Now()
	first, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second, "bounded by the timeout, not hung")
	assert.True(t, s.Local())
	assert.True(t, first.OK)
	assert.Zero(t, first.Wait)
	assert.Zero(t, first.Rate, "the local share is not a rate for the bucket to adopt")
	second, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Second), float64(second.Wait), float64(100*time.Millisecond), "a quarter of the rate with four replicas")

	s.Cancel(ctx, "k", second)
	again, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(second.Wait), float64(again.Wait), float64(100*time.Millisecond), "the local bucket gives back too")

	s.Pause(ctx, "k", time.Now().Add(time.Minute), shape)
	paused, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, float64(time.Minute), float64(paused.Wait), float64(time.Second), "a pause holds locally too")

	lines := logs.get()
	require.Len(t, lines, 1, "logged once: %q", lines)
	assert.Contains(t, lines[0], "Redis unreachable")
	require.Len(t, events.Events(), 1, "and reported once")
	e := events.Events()[0]
	assert.Equal(t, transport.EventStore, e.Kind)
	assert.Equal(t, [3]any{"shared", "local", 0.25}, [3]any{e.From, e.To, e.Rate})
	assert.Error(t, e.Err)
}

// The share of the rate a process allows itself without Redis: 1/n of it
// with n replicas, a quarter when the number is not given.
func TestFallbackShare(t *testing.T) {
	tests := []struct {
		name string
		opt  redisbucket.Option
		wait time.Duration // between two reservations at 8 tokens a second
	}{
		{"default", nil, 500 * time.Millisecond},
		{"2 replicas", redisbucket.WithReplicas(2), 250 * time.Millisecond},
		{"8 replicas", redisbucket.WithReplicas(8), time.Second},
		{"share 0.1", redisbucket.WithShare(0.1), 1250 * time.Millisecond},
		{"replicas 0 ignored", redisbucket.WithReplicas(0), 500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
			defer rdb.Close()
			s := redisbucket.New(rdb, tt.opt, redisbucket.WithLogger(nil))
			shape := bucket.Shape{PerSecond: 8, Burst: 8}
			_, err := s.Reserve(context.Background(), "k", 1, -1, shape)
			require.NoError(t, err)
			require.True(t, s.Local())
			r, err := s.Reserve(context.Background(), "k", 1, -1, shape)
			require.NoError(t, err)
			assert.InDelta(t, float64(tt.wait), float64(r.Wait), float64(50*time.Millisecond))
		})
	}
}

// A Redis that accepts connections and never answers costs one timeout,
// once: the store then limits in process without asking it again until
// the next probe. So for a client that bounds its calls by the context's
// deadline, and for one that does not (go-redis's default), which the
// store bounds itself.
func TestFallbackWhenRedisHangs(t *testing.T) {
	for _, deadlines := range []bool{false, true} {
		t.Run(fmt.Sprintf("ContextTimeoutEnabled=%v", deadlines), func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			var conns sync.WaitGroup
			stop := make(chan struct{})
			defer func() {
				close(stop)
				ln.Close()
				conns.Wait()
			}()
			conns.Go(func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns.Go(func() { <-stop; c.Close() }) // read nothing, answer nothing
				}
			})
			rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: deadlines})
			defer rdb.Close()
			var logs logLines
			s := redisbucket.New(rdb, redisbucket.WithTimeout(50*time.Millisecond), redisbucket.WithProbe(time.Hour), redisbucket.WithLogger(logs.logger()))
			shape := bucket.Shape{PerSecond: 8, Burst: 8}

			start := time.Now()
			_, err = s.Reserve(context.Background(), "k", 1, -1, shape)
			require.NoError(t, err)
			first := time.Since(start)
			start = time.Now()
			for range 10 {
				_, err = s.Reserve(context.Background(), "k", 1, -1, shape)
				require.NoError(t, err)
			}
			rest := time.Since(start)
			t.Logf("first call %v, ten more %v", first, rest)
			assert.True(t, s.Local())
			assert.Less(t, first, time.Second, "one timeout, not a hang")
			assert.Less(t, rest, 50*time.Millisecond, "no more timeouts until the probe")
			assert.Len(t, logs.get(), 1)
		})
	}
}

// switchable dials Redis at addr until it is turned off: then every
// connection, old or new, fails, as when Redis is unreachable.
type switchable struct {
	addr string
	off  atomic.Bool
}

var errSwitchedOff = errors.New("switched off")

func (sw *switchable) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	if sw.off.Load() {
		return nil, errSwitchedOff
	}
	c, err := (&net.Dialer{}).DialContext(ctx, network, sw.addr)
	if err != nil {
		return nil, err
	}
	return &switchedConn{Conn: c, sw: sw}, nil
}

type switchedConn struct {
	net.Conn
	sw *switchable
}

func (c *switchedConn) Read(p []byte) (int, error) {
	if c.sw.off.Load() {
		return 0, errSwitchedOff
	}
	return c.Conn.Read(p)
}

func (c *switchedConn) Write(p []byte) (int, error) {
	if c.sw.off.Load() {
		return 0, errSwitchedOff
	}
	return c.Conn.Write(p)
}

// A rate this process set while Redis was unreachable (a 429 lowered it)
// is written to Redis when it answers again: neither this process nor any
// other goes back to the rate Redis held, which the server refused.
func TestARateSetDuringAnOutageIsSharedWhenRedisAnswers(t *testing.T) {
	s, sw, other := outageStores(t)
	ctx := context.Background()
	key := testKey(t)
	fast, slow := bucket.Shape{PerSecond: 10, Burst: 10}, bucket.Shape{PerSecond: 2, Burst: 2}

	s.SetRate(ctx, key, fast)
	r, err := other.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	require.Equal(t, 10.0, r.Rate, "Redis holds the first rate")

	sw.off.Store(true)
	s.SetRate(ctx, key, slow)
	require.True(t, s.Local(), "Redis unreachable: the rate is set in process")
	sw.off.Store(false)
	time.Sleep(50 * time.Millisecond) // past the probe period

	r, err = s.Reserve(ctx, key, 1, -1, slow)
	require.NoError(t, err)
	require.False(t, s.Local(), "Redis answers again")
	assert.Equal(t, 2.0, r.Rate, "this process keeps the rate it set")
	r, err = other.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	assert.Equal(t, 2.0, r.Rate, "and every other process takes it")
}

// A rate this process set while Redis was unreachable, written when the
// key is next reserved in Redis (however much later), does not overwrite
// a rate the key took since: one another replica set (a 429 it saw, a
// raise), or the rate of a key made anew (it expired, or Redis lost it)
// from another replica's bucket. This process takes that rate instead.
func TestARateSetDuringAnOutageDoesNotOverwriteANewerOne(t *testing.T) {
	fast, slow, mid := bucket.Shape{PerSecond: 10, Burst: 10}, bucket.Shape{PerSecond: 2, Burst: 2}, bucket.Shape{PerSecond: 5, Burst: 5}
	for name, since := range map[string]func(t *testing.T, other *redisbucket.Store, key string){
		"set by another replica": func(t *testing.T, other *redisbucket.Store, key string) {
			other.SetRate(context.Background(), key, mid)
		},
		"of a key made anew": func(t *testing.T, other *redisbucket.Store, key string) {
			rdb := redisClient(t)
			require.NoError(t, rdb.Del(context.Background(), redisbucket.DefaultPrefix+key).Err())
			r, err := other.Reserve(context.Background(), key, 1, -1, mid)
			require.NoError(t, err)
			require.Equal(t, 5.0, r.Rate, "the key made at the other replica's rate")
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, sw, other := outageStores(t)
			ctx := context.Background()
			key := testKey(t)

			s.SetRate(ctx, key, fast)
			sw.off.Store(true)
			s.SetRate(ctx, key, slow) // a 429 seen in the outage
			require.True(t, s.Local(), "Redis unreachable: the rate is set in process")
			sw.off.Store(false)
			since(t, other, key)
			time.Sleep(50 * time.Millisecond) // past the probe period

			r, err := s.Reserve(ctx, key, 1, -1, slow)
			require.NoError(t, err)
			require.False(t, s.Local(), "Redis answers again")
			assert.Equal(t, 5.0, r.Rate, "this process takes the newer rate")
			r, err = other.Reserve(ctx, key, 1, -1, mid)
			require.NoError(t, err)
			assert.Equal(t, 5.0, r.Rate, "and the key keeps it")
		})
	}
}

// Two replicas that both lost Redis and set a rate meanwhile leave the key
// with the rate set last, whichever of them writes first when Redis
// answers again: the rate set earlier, written last, overwrote the later
// one.
func TestOfTwoRatesSetInAnOutageTheLaterStays(t *testing.T) {
	a, swA, _ := outageStores(t)
	b, swB, other := outageStores(t)
	ctx := context.Background()
	key := testKey(t)
	fast, slow, mid := bucket.Shape{PerSecond: 10, Burst: 10}, bucket.Shape{PerSecond: 2, Burst: 2}, bucket.Shape{PerSecond: 5, Burst: 5}

	a.SetRate(ctx, key, fast)
	swA.off.Store(true)
	swB.off.Store(true)
	a.SetRate(ctx, key, slow)         // A's 429
	time.Sleep(10 * time.Millisecond) // B's comes later
	b.SetRate(ctx, key, mid)
	require.True(t, a.Local() && b.Local(), "Redis unreachable: the rates are set in process")
	swA.off.Store(false)
	swB.off.Store(false)
	time.Sleep(50 * time.Millisecond) // past the probe period

	r, err := b.Reserve(ctx, key, 1, -1, mid)
	require.NoError(t, err)
	require.False(t, b.Local(), "Redis answers again")
	assert.Equal(t, 5.0, r.Rate, "B writes its rate")
	r, err = a.Reserve(ctx, key, 1, -1, slow)
	require.NoError(t, err)
	require.False(t, a.Local(), "Redis answers again")
	assert.Equal(t, 5.0, r.Rate, "A takes B's, set after its own")
	r, err = other.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	assert.Equal(t, 5.0, r.Rate, "and the key keeps it")
}

// outageStores is a store whose connection to Redis sw cuts, and another
// on the same Redis that keeps its own: two replicas, one of which loses
// Redis. The first probes again every 20 ms.
func outageStores(t *testing.T) (s *redisbucket.Store, sw *switchable, other *redisbucket.Store) {
	addr := redisClient(t).Options().Addr
	sw = &switchable{addr: addr}
	rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: sw.dial, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s = redisbucket.New(rdb, redisbucket.WithLogger(nil), redisbucket.WithTimeout(testTimeout),
		redisbucket.WithProbe(20*time.Millisecond))
	return s, sw, newStore(redisClient(t), redisbucket.WithLogger(nil))
}

// cutAfterAnswer cuts sw once the next script, armed, has its answer:
// Redis answers one call and is unreachable again for the next.
type cutAfterAnswer struct {
	sw    *switchable
	armed *atomic.Bool
}

func (h cutAfterAnswer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h cutAfterAnswer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); (name == "evalsha" || name == "eval") && h.armed.CompareAndSwap(true, false) {
			h.sw.off.Store(true)
		}
		return err
	}
}

func (h cutAfterAnswer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A rate and a pause this process set while Redis was unreachable, which
// it could not write when Redis answered one reservation and failed again
// at once (a flapping network), are neither lost nor undone: this process
// keeps its rate rather than take back the one the server refused, and
// both are written when Redis answers for good.
func TestARateAndPauseSetInAnOutageSurviveRedisFailingAgainAtOnce(t *testing.T) {
	addr := redisClient(t).Options().Addr
	sw := &switchable{addr: addr}
	var armed atomic.Bool
	rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: sw.dial, MaxRetries: -1})
	rdb.AddHook(cutAfterAnswer{sw: sw, armed: &armed})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redisbucket.New(rdb, redisbucket.WithLogger(nil), redisbucket.WithTimeout(testTimeout),
		redisbucket.WithProbe(20*time.Millisecond))
	other := newStore(redisClient(t), redisbucket.WithLogger(nil))
	ctx := context.Background()
	key := testKey(t)
	fast, slow := bucket.Shape{PerSecond: 10, Burst: 10}, bucket.Shape{PerSecond: 2, Burst: 2}

	s.SetRate(ctx, key, fast)
	sw.off.Store(true)
	s.SetRate(ctx, key, slow)                                // a 429's lower rate
	s.Pause(ctx, key, time.Now().Add(100*time.Second), slow) // and its reset
	require.True(t, s.Local(), "Redis unreachable: set in process")
	sw.off.Store(false)
	time.Sleep(50 * time.Millisecond) // past the probe period

	armed.Store(true) // Redis answers the reservation, then is cut again
	r, err := s.Reserve(ctx, key, 1, -1, slow)
	require.NoError(t, err)
	assert.True(t, s.Local(), "Redis failed again after the reservation")
	assert.Equal(t, 2.0, r.Rate, "this process keeps the rate it set, not the one Redis still held")
	local, err := s.Reserve(ctx, key, 1, -1, slow)
	require.NoError(t, err)
	assert.InDelta(t, float64(100*time.Second), float64(local.Wait), float64(2*time.Second), "the pause holds in process")

	sw.off.Store(false)
	time.Sleep(50 * time.Millisecond)
	_, err = s.Reserve(ctx, key, 1, -1, slow)
	require.NoError(t, err)
	require.False(t, s.Local(), "Redis answers for good")
	r, err = other.Reserve(ctx, key, 1, -1, fast)
	require.NoError(t, err)
	assert.Equal(t, 2.0, r.Rate, "every process takes the rate set in the outage")
	assert.InDelta(t, float64(100*time.Second), float64(r.Wait), float64(2*time.Second), "and is held by its pause")
}
