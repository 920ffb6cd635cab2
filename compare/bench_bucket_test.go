package main

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The x/time/rate side of the bucket's benchmarks (bucket/bench_test.go),
// with the same rates, so that one run compares them:
//
//	go test -run x -bench . -benchmem ./bucket/ ./compare/
const benchRate = 1e12

func BenchmarkRateAllow(b *testing.B) {
	l := rate.NewLimiter(benchRate, benchRate)
	b.ReportAllocs()
	for b.Loop() {
		if !l.Allow() {
			b.Fatal("refused")
		}
	}
}

func BenchmarkRateWait(b *testing.B) {
	l := rate.NewLimiter(benchRate, benchRate)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRateWaitDeadline(b *testing.B) {
	l := rate.NewLimiter(benchRate, benchRate)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRateAllowParallel(b *testing.B) {
	l := rate.NewLimiter(benchRate, benchRate)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}

func BenchmarkRateWaitParallel(b *testing.B) {
	l := rate.NewLimiter(benchRate, benchRate)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = l.Wait(ctx)
		}
	})
}

func BenchmarkRateWaitQueuedParallel(b *testing.B) {
	l := rate.NewLimiter(1e5, 1)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = l.Wait(ctx)
		}
	})
}

// BenchmarkRateQueue10k queues 10,000 waiters on x/time/rate, which gives
// each its own timer; its queue cannot be woken early (SetLimit does not
// move a reservation already made), so only the heap is compared.
func BenchmarkRateQueue10k(b *testing.B) {
	var heap float64
	for b.Loop() {
		l := rate.NewLimiter(rate.Every(time.Millisecond), 1)
		l.Allow()
		ctx, cancel := context.WithCancel(context.Background())
		before := heapInUse()
		var started atomic.Int64
		var wg sync.WaitGroup
		for range queued {
			wg.Go(func() {
				started.Add(1)
				_ = l.Wait(ctx)
			})
		}
		for started.Load() < queued {
			runtime.Gosched()
		}
		time.Sleep(50 * time.Millisecond) // let the last ones reach their timers
		heap += float64(heapInUse()-before) / queued
		cancel()
		wg.Wait()
	}
	b.ReportMetric(heap/float64(b.N), "heapB/waiter")
}

const queued = 10_000

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
