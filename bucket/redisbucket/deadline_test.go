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

// silentRedis is a client of a Redis that takes every byte and answers
// none, over in-memory connections (for synctest bubbles), with opts.
func silentRedis(opts redis.Options) *redis.Client {
	opts.Dialer = func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() { _, _ = io.Copy(io.Discard, server) }()
		return client, nil
	}
	opts.Addr, opts.MaxRetries, opts.Protocol = "127.0.0.1:6379", -1, 2
	return redis.NewClient(&opts)
}

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
				opts.ContextTimeoutEnabled = true
				rdb := silentRedis(opts)
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

// CheckEviction asks a Redis that does not answer for no longer than the
// store's timeout, whatever the client's own timeouts: a service that
// checks before it starts does not wait the client's read timeout (5 s by
// default, for each of the two settings it reads), nor for ever with a
// client whose socket deadlines are off; and the store's own check, beside
// its first reservation, does not outlive it.
func TestCheckEvictionOfARedisThatHangsTakesTheStoresTimeout(t *testing.T) {
	for name, opts := range map[string]redis.Options{
		"default":                               {},
		"ContextTimeoutEnabled":                 {ContextTimeoutEnabled: true},
		"ReadTimeout -2":                        {ReadTimeout: -2},
		"ContextTimeoutEnabled, ReadTimeout -2": {ContextTimeoutEnabled: true, ReadTimeout: -2},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rdb := silentRedis(opts)
				defer rdb.Close()
				s := redisbucket.New(rdb, redisbucket.WithTimeout(50*time.Millisecond), redisbucket.WithLogger(nil))

				start := time.Now()
				err := s.CheckEviction(context.Background())
				require.Error(t, err)
				assert.NotErrorIs(t, err, redisbucket.ErrEviction, "not known: not said")
				assert.Equal(t, 50*time.Millisecond, time.Since(start), "the store's timeout")
			})
		})
	}
}
