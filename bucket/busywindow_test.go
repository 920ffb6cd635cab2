package bucket_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// busyWindow is express-rate-limit's fixed window on a busy event loop:
// 100 requests a window of 10 s opened by the first request after the
// last ended, its RateLimit header (draft-7) stating the seconds left,
// rounded up, and some requests (every seventh) held a second in the
// server's queue before it counts them.
type busyWindow struct {
	mu           sync.Mutex
	start        time.Time
	count, n     int
	refused, all int
}

func (s *busyWindow) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	s.mu.Lock()
	s.n++
	held := s.n%7 == 0
	s.mu.Unlock()
	if held {
		time.Sleep(1040 * time.Millisecond)
	} else {
		time.Sleep(2 * time.Millisecond)
	}
	s.mu.Lock()
	now := time.Now()
	if s.start.IsZero() || !now.Before(s.start.Add(10*time.Second)) {
		s.start, s.count = now, 0
	}
	s.count++
	s.all++
	left := int(math.Ceil(s.start.Add(10 * time.Second).Sub(now).Seconds()))
	status, h := http.StatusOK, http.Header{"Ratelimit-Policy": {"100;w=10"}}
	if s.count > 100 {
		status = http.StatusTooManyRequests
		s.refused++
		h.Set("Retry-After", fmt.Sprint(left))
	}
	h.Set("Ratelimit", fmt.Sprintf("limit=100, remaining=%d, reset=%d", max(100-s.count, 0), left))
	s.mu.Unlock()
	time.Sleep(time.Millisecond) // the answer's way back
	return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
}

// A fixed window whose server holds some requests in its queue a second
// before it counts them is still a window: their resets, counted from the
// answer, end where the others' do. Counted from the sending, they ended a
// second short, voted the window a bucket, and the limiter let its own
// rate refill the server's count: a 429 at each window's end, and the
// whole seconds it asked for, lost.
func TestLimitAgainstAFixedWindowOnABusyServer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &busyWindow{}
		rt := transport.Chain(srv, retry.New(), bucket.Limit(bucket.New(bucket.PerSecond(20))))
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan int, 500)
		for i := range 500 {
			next <- i
		}
		close(next)
		for range 32 {
			wg.Go(func() {
				for range next {
					req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://busy.test/v1/chat/completions",
						strings.NewReader(`{"model":"m"}`))
					require.NoError(t, err)
					resp, err := rt.RoundTrip(req)
					require.NoError(t, err)
					require.Equal(t, http.StatusOK, resp.StatusCode)
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		t.Logf("took %v, %d 429s of %d arrivals", took, srv.refused, srv.all)
		assert.LessOrEqual(t, srv.refused, 2, "429s of %d arrivals", srv.all)
		assert.Less(t, took, 42500*time.Millisecond, "five windows of 100: four window lengths, and the seconds the server held requests")
	})
}
