package redisbucket

import (
	"context"
	"fmt"
	"net"
	"testing"

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
