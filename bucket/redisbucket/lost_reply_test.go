package redisbucket_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
)

// replyLoser dials Redis at addr; once armed, the next script sent on any
// of its connections runs in Redis, and its reply is lost: the connection
// reads it and fails with err, as after a read timeout or a reset that
// came too late.
type replyLoser struct {
	addr  string
	err   error
	armed atomic.Bool
}

func (l *replyLoser) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, l.addr)
	if err != nil {
		return nil, err
	}
	return &losingConn{Conn: c, l: l}, nil
}

type losingConn struct {
	net.Conn
	l    *replyLoser
	lose atomic.Bool // the reply to the script just written is to be lost
}

func (c *losingConn) Write(p []byte) (int, error) {
	if bytes.Contains(bytes.ToLower(p), []byte("evalsha")) && c.l.armed.CompareAndSwap(true, false) {
		c.lose.Store(true)
	}
	return c.Conn.Write(p)
}

func (c *losingConn) Read(p []byte) (int, error) {
	if c.lose.Load() {
		// The reply's first bytes: Redis ran the script. They are thrown
		// away, and the connection with them.
		if _, err := c.Conn.Read(p); err != nil {
			return 0, err
		}
		_ = c.Conn.Close()
		return 0, c.l.err
	}
	return c.Conn.Read(p)
}

// A reservation whose reply is lost after Redis ran the script (a read
// timeout, a connection reset) is not sent again by go-redis's retries
// (three by default): sent again, it reserved a second time, and the one
// request cost the key two slots, the second for nobody. The store limits
// in process instead, as for any call that fails, and the key holds the
// one reservation.
func TestAReservationWhoseReplyIsLostIsMadeOnce(t *testing.T) {
	for name, lost := range map[string]error{"read timeout": os.ErrDeadlineExceeded, "connection reset": io.EOF} {
		t.Run(name, func(t *testing.T) {
			addr := redisClient(t).Options().Addr
			loser := &replyLoser{addr: addr, err: lost}
			// go-redis's defaults: MaxRetries 3.
			rdb := redis.NewClient(&redis.Options{Addr: addr, Dialer: loser.dial, ContextTimeoutEnabled: true})
			t.Cleanup(func() { _ = rdb.Close() })
			s := redisbucket.New(rdb, redisbucket.WithLogger(nil), redisbucket.WithTimeout(testTimeout),
				redisbucket.WithProbe(time.Hour))
			other := newStore(redisClient(t), redisbucket.WithLogger(nil))
			ctx := context.Background()
			shape := bucket.Shape{PerSecond: 1 / slowEvery.Seconds(), Burst: 1} // a token every 1000 s

			reserve(t, s, testKey(t), 1, -1, shape) // the script is loaded in Redis
			key := testKey(t)
			loser.armed.Store(true)
			r, err := s.Reserve(ctx, key, 1, -1, shape)
			require.NoError(t, err)
			require.False(t, loser.armed.Load(), "the reply was lost")
			assert.True(t, s.Local(), "the call failed: limited in process")
			assert.True(t, r.OK && r.Wait == 0, "the first request of a new bucket passes: %+v", r)

			next := reserve(t, other, key, 1, -1, shape)
			assert.InDelta(t, float64(slowEvery), float64(next.Wait), float64(time.Second),
				"the key holds one reservation before the next, not two")
		})
	}
}

// A Redis that does not hold the reserve script (restarted, or its
// scripts flushed) answers the store's EVALSHA with NOSCRIPT, having run
// nothing: the store sends the script's source then, and the key holds
// the one reservation.
func TestAReservationReachesARedisThatLacksTheScript(t *testing.T) {
	rdb := redisClient(t)
	s := newStore(rdb, redisbucket.WithLogger(nil))
	shape := bucket.Shape{PerSecond: 1 / slowEvery.Seconds(), Burst: 1} // a token every 1000 s
	key := testKey(t)

	require.NoError(t, rdb.ScriptFlush(context.Background()).Err())
	first := reserve(t, s, key, 1, -1, shape)
	assert.True(t, first.OK && first.Wait == 0, "the first request of a new bucket passes: %+v", first)
	next := reserve(t, s, key, 1, -1, shape)
	assert.InDelta(t, float64(slowEvery), float64(next.Wait), float64(time.Second), "one reservation before it")
}
