package redisbucket_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/steadyapi/steady/bucket"
)

// The benchmarks measure one acquisition against the local Redis: this
// store's script and redis_rate's (the reference GCRA limiter on Redis),
// at a rate so high that nothing waits, from one goroutine and from eight.
// acq/s is acquisitions a second over the whole run; ns/op is the latency
// of one from one goroutine, the time per acquisition from eight.

const benchRate = 1e9

func benchAcquire(b *testing.B, goroutines int, acquire func(context.Context) error) {
	b.ReportAllocs()
	ctx := context.Background()
	start := time.Now()
	if goroutines == 1 {
		for b.Loop() {
			if err := acquire(ctx); err != nil {
				b.Fatal(err)
			}
		}
	} else {
		// RunParallel starts SetParallelism × GOMAXPROCS goroutines.
		b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := acquire(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "acq/s")
}

func BenchmarkAcquire(b *testing.B) {
	rdb := redisClient(b)
	store := newStore(rdb)
	// A client that bounds its calls by the context's deadline lets the
	// store call it inline, instead of beside a timer in a goroutine.
	rdbCtx := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr, ContextTimeoutEnabled: true})
	defer rdbCtx.Close()
	inline := newStore(rdbCtx)
	shape := bucket.Shape{PerSecond: benchRate, Burst: benchRate}
	limiter := redis_rate.NewLimiter(rdb)
	limit := redis_rate.Limit{Rate: benchRate, Burst: benchRate, Period: time.Second}
	for _, g := range []int{1, 8} {
		name := map[int]string{1: "1goroutine", 8: "8goroutines"}[g]
		b.Run("steady/Store.Reserve/"+name, func(b *testing.B) {
			key := testKey(b)
			benchAcquire(b, g, func(ctx context.Context) error {
				_, err := store.Reserve(ctx, key, 1, -1, shape)
				return err
			})
			if store.Local() {
				b.Fatal("the store fell back to local limiting")
			}
		})
		b.Run("steady/Bucket.Wait/"+name, func(b *testing.B) {
			bk := bucket.New(bucket.PerSecond(benchRate), bucket.WithStore(store, testKey(b)))
			benchAcquire(b, g, func(ctx context.Context) error { return bk.Wait(ctx, 1) })
		})
		b.Run("steady/Store.Reserve/ContextTimeoutEnabled/"+name, func(b *testing.B) {
			key := testKey(b)
			benchAcquire(b, g, func(ctx context.Context) error {
				_, err := inline.Reserve(ctx, key, 1, -1, shape)
				return err
			})
			if inline.Local() {
				b.Fatal("the store fell back to local limiting")
			}
		})
		b.Run("steady/Bucket.Wait/ContextTimeoutEnabled/"+name, func(b *testing.B) {
			bk := bucket.New(bucket.PerSecond(benchRate), bucket.WithStore(inline, testKey(b)))
			benchAcquire(b, g, func(ctx context.Context) error { return bk.Wait(ctx, 1) })
		})
		b.Run("redis_rate/Allow/"+name, func(b *testing.B) {
			key := testKey(b)
			benchAcquire(b, g, func(ctx context.Context) error {
				_, err := limiter.Allow(ctx, key, limit)
				return err
			})
		})
	}
}
