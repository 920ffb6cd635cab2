package bucket_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// A bucket for 600 requests a minute: its first request passes at once, and
// the next must wait its tenth of a second; it does not start with a full
// second's burst, which the server's own bucket may not have.
func ExampleNew() {
	b := bucket.New(bucket.PerMinute(600))
	fmt.Println(b.Rate(), "burst", b.Burst())
	fmt.Println(b.TryTake(1), b.TryTake(1))
	// Output:
	// 600/min burst 10
	// true false
}

// A wait that cannot end before the context's deadline is refused at once,
// with an error that matches context.DeadlineExceeded.
func ExampleBucket_Wait() {
	b := bucket.New(bucket.PerMinute(6)) // one request every 10 seconds
	b.TryTake(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	err := b.Wait(ctx, 1)
	fmt.Println(err)
	fmt.Println(errors.Is(err, context.DeadlineExceeded), time.Since(start) < time.Second)
	// Output:
	// steady: wait would outlast the context deadline
	// true true
}

// A server that counts in windows says what is left of the current one:
// the bucket spends exactly that, at once, whatever its own rate.
func ExampleBucket_SetRemaining() {
	b := bucket.New(bucket.PerSecond(1))
	b.SetRemaining(3, time.Now().Add(time.Minute))
	for range 4 {
		fmt.Print(b.TryTake(1), " ")
	}
	fmt.Println()
	// Output:
	// true true true false
}

// Limit reads every answer: a 429 pauses the whole bucket until the reset
// the server gave, and lowers the rate when the reset is a bucket's next
// token (a second here; a longer one names a window, which refills at
// once, and the rate stays). The 429 itself is returned: a retry decorator
// outside Limit sends the next attempt, which waits for the pause.
func ExampleLimit() {
	b := bucket.New(bucket.PerMinute(600))
	server := transport.Func(func(req *http.Request) (*http.Response, error) {
		h := http.Header{"X-Ratelimit-Reset": {"1"}}
		return &http.Response{StatusCode: http.StatusTooManyRequests, Header: h, Body: io.NopCloser(strings.NewReader("{}"))}, nil
	})
	client := &http.Client{Transport: transport.Chain(server, bucket.Limit(b))}

	resp, err := client.Post("https://api.together.xyz/v1/chat/completions", "application/json", strings.NewReader(`{}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	transport.Drain(resp)
	fmt.Println(resp.StatusCode)
	fmt.Println("paused:", !b.TryTake(1))
	fmt.Println("rate:", b.Rate())
	// Output:
	// 429
	// paused: true
	// rate: 420/min
}

// A nightly job and a chatbot share one key. The job's requests carry the
// batch priority in their context; the chat request that comes after them
// is served first, at the next token, while the job's waits stay queued.
func ExampleBucket_Wait_priority() {
	b := bucket.New(bucket.PerSecond(2), bucket.WithInitial(0))
	job, stop := context.WithCancel(transport.WithPriority(context.Background(), transport.PriorityBatch))
	chat := transport.WithPriority(context.Background(), transport.PriorityInteractive)

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { _ = b.Wait(job, 1) })
	}
	for b.Waiting() < 3 {
		runtime.Gosched()
	}
	if err := b.Wait(chat, 1); err != nil { // the next token, in 500ms
		panic(err)
	}
	fmt.Println("chat served; job waits still queued:", b.Waiting())
	stop()
	wg.Wait()
	// Output:
	// chat served; job waits still queued: 3
}
