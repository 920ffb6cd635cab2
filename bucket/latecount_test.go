package bucket_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// A count of what remains that comes back after a 429 paused the bucket
// was taken before it, in the answer of a request sent before it (a
// non-streamed chat request answers seconds after it was counted): the
// server's refusal is the later word, and the pause holds.
func TestACountAnsweredDuringAPauseKeepsThePause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var mu sync.Mutex
		var arrivals []time.Duration
		srv := transport.Func(func(req *http.Request) (*http.Response, error) {
			mu.Lock()
			arrivals = append(arrivals, time.Since(start))
			i := len(arrivals)
			mu.Unlock()
			h := counts("10", "0", "20") // refused: nothing left for 20 s
			status := http.StatusTooManyRequests
			if i == 1 {
				// The first, counted when it came, answers 5 s later.
				time.Sleep(5 * time.Second)
				h, status = counts("10", "5", "15"), http.StatusOK
			} else if i > 2 {
				status = http.StatusOK
			}
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader("{}")), Request: req}, nil
		})
		rt := bucket.Limit(bucket.New(bucket.PerSecond(10)))(srv)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := get(t, rt, context.Background())
			assert.NoError(t, err)
		}()
		time.Sleep(100 * time.Millisecond)
		resp, err := get(t, rt, context.Background()) // refused: a pause of 20 s
		require.NoError(t, err)
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		<-done // the first one's count arrives during the pause
		_, err = get(t, rt, context.Background())
		require.NoError(t, err)
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, arrivals, 3)
		assert.GreaterOrEqual(t, arrivals[2], 20100*time.Millisecond, "sent once the pause is over")
	})
}
