package redisbucket_test

import (
	"context"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
)

// A client that bounds its calls by the context's deadline
// (ContextTimeoutEnabled) but not its socket reads and writes at all (a
// ReadTimeout or WriteTimeout of -2, which go-redis takes as no deadline
// on the socket, the context's included) would hold a call in the
// caller's goroutine for as long as Redis does not answer: the store
// bounds such a client's calls itself, as it does a client's that ignores
// the context, and a request waits the store's timeout, not for ever.
func TestAClientWithoutSocketDeadlinesDoesNotHangARequest(t *testing.T) {
	for name, opts := range map[string]redis.Options{
		"ReadTimeout -2":  {ReadTimeout: -2},
		"WriteTimeout -2": {WriteTimeout: -2},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// A Redis that takes every byte and answers none.
				opts.Dialer = func(context.Context, string, string) (net.Conn, error) {
					client, server := net.Pipe()
					go func() { _, _ = io.Copy(io.Discard, server) }()
					return client, nil
				}
				opts.Addr, opts.ContextTimeoutEnabled, opts.MaxRetries, opts.Protocol = "127.0.0.1:6379", true, -1, 2
				rdb := redis.NewClient(&opts)
				defer rdb.Close()
				s := redisbucket.New(rdb, redisbucket.WithTimeout(50*time.Millisecond),
					redisbucket.WithProbe(time.Hour), redisbucket.WithLogger(nil))

				start := time.Now()
				r, err := s.Reserve(context.Background(), "k", 1, -1, bucket.Shape{PerSecond: 8, Burst: 8})
				require.NoError(t, err)
				assert.Equal(t, 50*time.Millisecond, time.Since(start), "the store's timeout, not a hang")
				assert.True(t, s.Local(), "limited in process")
				assert.True(t, r.OK)
			})
		})
	}
}
