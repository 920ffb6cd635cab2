package redisbucket

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket/internal/redistest"
)

// A reservation made in process during one outage gives back nothing when
// cancelled during the next: the in-process bucket of the next outage is
// a new one, whose reservations its ID must not name.
func TestACancelFromAnEarlierOutageGivesBackNothing(t *testing.T) {
	live := redistest.Client(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	dead := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ContextTimeoutEnabled: true})
	require.NoError(t, ln.Close())
	defer dead.Close()
	s := New(dead, WithLogger(nil), WithProbe(10*time.Millisecond), WithShare(1))
	ctx := context.Background()
	shape := bucket.Shape{PerSecond: 1e-3, Burst: 1} // a token every 1000 s
	every := float64(1000 * time.Second)

	_, err = s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	old, err := s.Reserve(ctx, "k", 1, -1, shape) // sleeps 1000 s
	require.NoError(t, err)
	require.True(t, old.OK && old.ID < 0, "reserved in process")

	s.c = live // Redis answers: the outage ends
	time.Sleep(20 * time.Millisecond)
	_, err = s.Reserve(ctx, fmt.Sprintf("steady:test:%s:%d", t.Name(), time.Now().UnixNano()), 1, -1, shape)
	require.NoError(t, err)
	require.False(t, s.Local())
	s.c = dead // and stops again
	_, err = s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	require.True(t, s.Local())
	promised, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	require.InDelta(t, every, float64(promised.Wait), float64(time.Second))

	s.Cancel(ctx, "k", old) // the first outage's caller gives up
	next, err := s.Reserve(ctx, "k", 1, -1, shape)
	require.NoError(t, err)
	assert.InDelta(t, 2*every, float64(next.Wait), float64(time.Second),
		"queued behind the promised slot, not given it a second time")
}
