package together_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// TestTokenLimitIsLearnt runs chat requests of 60 tokens each (40
// characters of prompt, max_tokens 50) against a key whose request limit
// is generous but whose token limit is 6,000 a minute: the token limit
// binds, at 1.67 requests a second. The server's 429s say only
// dynamic_token_limited and x-ratelimit-reset; the preset must open its
// token limiter from that and pace by tokens.
func TestTokenLimitIsLearnt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{
			Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 600, TPM: 6000}},
		})
		const n = 200
		jobs := make(chan int, n)
		for i := range n {
			jobs <- i
		}
		close(jobs)
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Go(func() {
				for i := range jobs {
					prompt := fmt.Sprintf("%040d", i)
					body := `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","max_tokens":50,"messages":[{"role":"user","content":"` + prompt + `"}]}`
					req, err := http.NewRequestWithContext(context.Background(), "POST", "http://sim.test/v1/chat/completions", strings.NewReader(body))
					require.NoError(t, err)
					resp, err := client.Do(req)
					if !assert.NoError(t, err) {
						continue
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if assert.Equal(t, 200, resp.StatusCode) {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		elapsed := time.Since(start)
		st := srv.Stats()
		least := time.Duration(float64(n*60-100) / 100 * float64(time.Second)) // a second of tokens is free
		t.Logf("%d requests, %d arrivals, %d 429s, %v (least possible %v)", n, st.Arrivals, st.TooMany, elapsed, least)
		assert.Equal(t, n, ok)
		assert.LessOrEqual(t, float64(st.TooMany)/float64(st.Arrivals), 0.05, "429s once the token limit is known")
		assert.LessOrEqual(t, elapsed, least*125/100)
	})
}
