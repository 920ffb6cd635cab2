package bucket_test

import (
	"context"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// The uncontended benchmarks give both limiters a rate so high that no
// call ever waits: what is measured is the bookkeeping of one take.
const benchRate = 1e12

func BenchmarkTryTake(b *testing.B) {
	l := bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate))
	b.ReportAllocs()
	for b.Loop() {
		if !l.TryTake(1) {
			b.Fatal("refused")
		}
	}
}

func BenchmarkWait(b *testing.B) {
	l := bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
}

// A Wait whose context has a deadline pays for the deadline check too.
func BenchmarkWaitDeadline(b *testing.B) {
	l := bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Wait(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTryTakeParallel(b *testing.B) {
	l := bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.TryTake(1)
		}
	})
}

func BenchmarkWaitParallel(b *testing.B) {
	l := bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate))
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = l.Wait(ctx, 1)
		}
	})
}

// Waiting for real: 100,000 tokens a second, so that most Waits queue,
// from as many goroutines as the benchmark runs. ns/op is the time per
// token at that rate (10µs) plus what the queue costs; allocs/op is what
// one queued wait allocates.
func BenchmarkWaitQueuedParallel(b *testing.B) {
	l := bucket.New(bucket.PerSecond(1e5))
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = l.Wait(ctx, 1)
		}
	})
}

// BenchmarkWaitQueuedParallelPriorities is BenchmarkWaitQueuedParallel
// with the waits spread over three priorities: the cost of the levels and
// of aging, and what they allocate.
func BenchmarkWaitQueuedParallelPriorities(b *testing.B) {
	l := bucket.New(bucket.PerSecond(1e5))
	ctxs := []context.Context{
		transport.WithPriority(context.Background(), transport.PriorityInteractive),
		context.Background(),
		transport.WithPriority(context.Background(), transport.PriorityBatch),
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		ctx := ctxs[next.Add(1)%3]
		for pb.Next() {
			_ = l.Wait(ctx, 1)
		}
	})
}

const queued = 10_000

// BenchmarkQueue10k queues 10,000 waiters behind a pause, then ends the
// pause with a window that admits them all. It reports the heap each
// queued waiter costs (its goroutine's stack, the caller's, not counted)
// and the time to wake them all, per waiter, until the last has returned.
func BenchmarkQueue10k(b *testing.B) {
	var heap, wake float64
	for b.Loop() {
		l := bucket.New(bucket.PerSecond(1))
		l.Pause(time.Now().Add(time.Hour))
		before := heapInUse()
		var wg sync.WaitGroup
		for range queued {
			wg.Go(func() { _ = l.Wait(context.Background(), 1) })
		}
		for l.Waiting() < queued {
			runtime.Gosched()
		}
		heap += float64(heapInUse()-before) / queued
		start := time.Now()
		l.SetRemaining(queued, time.Now().Add(time.Hour))
		wg.Wait()
		wake += float64(time.Since(start).Nanoseconds()) / queued
	}
	b.ReportMetric(heap/float64(b.N), "heapB/waiter")
	b.ReportMetric(wake/float64(b.N), "ns-wake/waiter")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkChannelWake10k is the floor under ns-wake/waiter: 10,000
// goroutines blocked on one channel, woken by closing it.
func BenchmarkChannelWake10k(b *testing.B) {
	var wake float64
	for b.Loop() {
		ch := make(chan struct{})
		var parked atomic.Int64
		var wg sync.WaitGroup
		for range queued {
			wg.Go(func() {
				parked.Add(1)
				<-ch
			})
		}
		for parked.Load() < queued {
			runtime.Gosched()
		}
		start := time.Now()
		close(ch)
		wg.Wait()
		wake += float64(time.Since(start).Nanoseconds()) / queued
	}
	b.ReportMetric(wake/float64(b.N), "ns-wake/waiter")
}

// BenchmarkLimit is one request through Limit against a transport that
// answers at once with Together's rate headers: the wait, the header
// parse, and what the answer teaches, over the bare transport.
func BenchmarkLimit(b *testing.B) {
	h := http.Header{"X-Ratelimit-Limit": {"10"}, "X-Ratelimit-Remaining": {"9"}, "X-Ratelimit-Reset": {"0.1"}}
	resp := &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody}
	base := transport.Func(func(*http.Request) (*http.Response, error) { return resp, nil })
	rt := bucket.Limit(bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate)))(base)
	req, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLimitQuiet is one request through Limit, and through Keyed
// under Inspect (whose reading of the request is in the figure), against
// a transport that answers 200 at once with one header and no rate
// headers: the happy path, a grant at once and an answer that teaches
// nothing but the accepted count.
func BenchmarkLimitQuiet(b *testing.B) {
	h := http.Header{"Content-Type": {"application/json"}}
	resp := &http.Response{StatusCode: http.StatusOK, Header: h, Body: http.NoBody}
	base := transport.Func(func(*http.Request) (*http.Response, error) { return resp, nil })
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"limit", bucket.Limit(bucket.New(bucket.PerSecond(benchRate), bucket.WithBurst(benchRate)))(base)},
		{"keyed", transport.Chain(base, transport.Inspect(), bucket.Keyed(bucket.PerSecond(benchRate)))},
	} {
		b.Run(c.name, func(b *testing.B) {
			req, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
