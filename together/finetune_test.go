package together_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
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

// The long wait of the fine-tune route is for a slot (a 409) alone: any
// other failure of a fine-tune request (a job's status asked of a server
// that answers 503, a creation sent to a server that is down) is retried
// as the caller's WithMaxRetries says, not for an hour.
func TestFineTuneRetriesOtherFailuresAsAnyRoute(t *testing.T) {
	for name, answer := range map[string]func() (*http.Response, error){
		"503": func() (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody}, nil
		},
		"a server that is down": func() (*http.Response, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				sends := 0
				base := transport.Func(func(req *http.Request) (*http.Response, error) {
					if req.Body != nil {
						_ = req.Body.Close()
					}
					mu.Lock()
					sends++
					mu.Unlock()
					resp, err := answer()
					if resp != nil {
						resp.Request = req
					}
					return resp, err
				})
				client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"), together.WithMaxRetries(2))}
				start := time.Now()
				resp, err := client.Get(together.DefaultBaseURL + "/fine-tunes/ft-1")
				if err == nil {
					_ = resp.Body.Close()
				}
				assert.Equal(t, 3, sends, "the first attempt and two retries")
				assert.Less(t, time.Since(start), time.Minute)
			})
		})
	}
}

// Only a fine-tune's creation waits for a slot: a 409 to anything else of
// the route (a job cancelled that has already ended, a job's status) is
// retried as any route's 409, as WithMaxRetries says, not for an hour.
func TestFineTuneWaitsForASlotOnlyWhenCreatingOne(t *testing.T) {
	for name, send := range map[string]func(*http.Client) (*http.Response, error){
		"a cancel": func(c *http.Client) (*http.Response, error) {
			return c.Post(together.DefaultBaseURL+"/fine-tunes/ft-1/cancel", "application/json", nil)
		},
		"a job's status": func(c *http.Client) (*http.Response, error) {
			return c.Get(together.DefaultBaseURL + "/fine-tunes/ft-1")
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				sends := 0
				base := transport.Func(func(req *http.Request) (*http.Response, error) {
					if req.Body != nil {
						_ = req.Body.Close()
					}
					mu.Lock()
					sends++
					mu.Unlock()
					return &http.Response{StatusCode: http.StatusConflict, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"), together.WithMaxRetries(2))}
				start := time.Now()
				resp, err := send(client)
				require.NoError(t, err)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusConflict, resp.StatusCode)
				assert.Equal(t, 3, sends, "the first attempt and two retries")
				assert.Less(t, time.Since(start), time.Minute)
			})
		})
	}
}
