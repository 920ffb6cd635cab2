package redisbucket_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Four transports in one process, each with its own Redis connection and
// bucket on one key, share the limit: together they send what one would.
func TestReplicasShareOneLimit(t *testing.T) {
	rdb := redisClient(t)
	addr := rdb.Options().Addr
	sim := simulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	key := testKey(t)

	const run = 6 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var got tally
	var wg sync.WaitGroup
	for range replicas {
		r := newReplica(addr, key)
		defer r.close()
		wg.Go(func() { drive(ctx, r.client, srv.URL, 8, 5*time.Second, &got) })
	}
	wg.Wait()
	t.Logf("callers: %s", &got)

	checkServer(t, sim)
	require.Positive(t, got.calls.Load())
	assert.Equal(t, got.calls.Load(), got.ok.Load()+got.tooMany.Load()+got.other.Load()+got.errs.Load(), "every call answered")
	assert.GreaterOrEqual(t, float64(got.ok.Load()), 0.8*limitRPS*run.Seconds(), "the shared limit is used, not wasted")
}
