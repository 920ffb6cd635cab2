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

// A 429 that WithNotLimited says is no refusal of the limit (an account
// out of quota) pauses neither the key's request limiter nor its token
// limiter, which is open (a token limit of a known rate), and lowers
// neither rate: the next request goes at once. The limiters read no body:
// they are told by the bytes the caller reads, which reach it whole. A
// 429 of the limit, beside it, pauses the key as ever, and so does one
// whose body is not read before the next request is sent.
func TestA429ThatIsNoLimitPausesNoLimiter(t *testing.T) {
	const quota = `{"error":{"type":"insufficient_quota"}}`
	for _, tt := range []struct {
		name   string
		body   string
		unread bool // the body is read after the next request
		paused bool
	}{
		{"out of quota", quota, false, false},
		{"the limit's", `{"error":{"type":"requests"}}`, false, true},
		{"out of quota, read late", quota, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				var at []time.Duration
				start := time.Now()
				base := transport.Func(func(req *http.Request) (*http.Response, error) {
					_ = req.Body.Close()
					mu.Lock()
					defer mu.Unlock()
					at = append(at, time.Since(start))
					if len(at) == 2 {
						return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"10"}},
							Body: io.NopCloser(strings.NewReader(tt.body)), Request: req}, nil
					}
					return &http.Response{StatusCode: http.StatusOK, Header: http.Header{},
						Body: io.NopCloser(strings.NewReader(`{"usage":{"prompt_tokens":1,"completion_tokens":1}}`)), Request: req}, nil
				})
				notLimited := func(_ http.Header, body []byte) bool {
					return strings.Contains(string(body), "insufficient_quota")
				}
				rt := bucket.Keyed(bucket.PerSecond(10), bucket.WithLimitOptions(bucket.WithNotLimited(notLimited)),
					bucket.WithTokenLimits(bucket.TokenLimit{Rate: bucket.PerSecond(1000)}))(base)
				var late *http.Response
				for i := range 3 {
					req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "https://api.example.com/v1/chat/completions",
						strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":10}`))
					require.NoError(t, err)
					resp, err := rt.RoundTrip(req)
					require.NoError(t, err)
					if i == 1 && tt.unread {
						late = resp
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					if i == 1 {
						assert.Equal(t, tt.body, string(b), "the 429's body, whole")
					}
				}
				if late != nil {
					b, _ := io.ReadAll(late.Body)
					_ = late.Body.Close()
					assert.Equal(t, tt.body, string(b), "the 429's body, whole")
				}
				require.Len(t, at, 3)
				if tt.paused {
					assert.GreaterOrEqual(t, at[2], 10*time.Second, "the limit's 429 pauses the key")
					return
				}
				assert.LessOrEqual(t, at[2], 200*time.Millisecond, "no pause, and the rate of 10 a second")
			})
		})
	}
}
