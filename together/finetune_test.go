package together_test

import (
	"context"
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

const fineTuneBody = `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","training_file":"file-1"}`

func createFineTune(ctx context.Context, client *http.Client) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://sim.test/v1/fine-tunes", strings.NewReader(fineTuneBody))
	if err != nil {
		return nil, err
	}
	return client.Do(req)
}

// TestFineTuneWaitsForASlot: the provider runs at most 3 jobs per key and
// answers 409 beyond. A fourth creation waits (backing off) until a job
// ends, within the caller's deadline.
func TestFineTuneWaitsForASlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := simClient(conformance.Config{FineTuneDuration: 2 * time.Minute})
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var took []time.Duration
		for range 4 {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				resp, err := createFineTune(ctx, client)
				if !assert.NoError(t, err) {
					return
				}
				resp.Body.Close()
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				mu.Lock()
				took = append(took, time.Since(start))
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Len(t, took, 4)
		last := max(took[0], took[1], took[2], took[3])
		assert.GreaterOrEqual(t, last, 2*time.Minute, "the fourth job waited for one to end")
		assert.Less(t, last, 3*time.Minute, "and did not wait much longer")
	})
}

// TestFineTuneGivesUpAtTheDeadline: with a deadline shorter than any job,
// the fourth creation gets the server's 409 back, at once when the next
// wait cannot fit, never after its deadline.
func TestFineTuneGivesUpAtTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := simClient(conformance.Config{FineTuneDuration: time.Hour})
		for range 3 {
			resp, err := createFineTune(context.Background(), client)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := createFineTune(ctx, client)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusConflict, resp.StatusCode)
		assert.LessOrEqual(t, time.Since(start), 30*time.Second)
	})
}
