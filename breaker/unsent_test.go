package breaker_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// A limiter under the breaker (as in a preset's stack) that refuses a
// request before sending it (a wait longer than it can take on, a wait
// that would outlast the deadline, a request cancelled while it queued)
// says nothing of the model: nothing reached it. Counted as failures, a
// few such refusals would open the breaker of a healthy model for every
// caller. They count as neither success nor failure.
func TestALimitersRefusalIsNotTheModelsFailure(t *testing.T) {
	for name, refused := range map[string]func(t *testing.T, rt http.RoundTripper) error{
		"a wait too long": func(t *testing.T, rt http.RoundTripper) error {
			req := chat(t, "m")
			req.Header.Set("X-Cost", "huge")
			_, err := send(t, rt, req)
			require.ErrorIs(t, err, bucket.ErrTooLong)
			return err
		},
		"a wait past the deadline": func(t *testing.T, rt http.RoundTripper) error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := send(t, rt, chat(t, "m").WithContext(ctx))
			require.ErrorIs(t, err, transport.ErrDeadline)
			return err
		},
		"a request cancelled while queued": func(t *testing.T, rt http.RoundTripper) error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			time.AfterFunc(time.Second, cancel)
			_, err := send(t, rt, chat(t, "m").WithContext(ctx))
			require.ErrorIs(t, err, context.Canceled)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				b := bucket.New(bucket.PerMinute(1))
				require.True(t, b.TryTake(1), "the next token is a minute away")
				rt := transport.Chain(srv, breaker.New(), bucket.Limit(b, bucket.WithCost(func(req *http.Request) int {
					if req.Header.Get("X-Cost") == "huge" {
						return math.MaxInt
					}
					return 1
				})))
				for range 2 * breaker.DefaultConsecutiveFailures {
					err := refused(t, rt)
					assert.NotErrorIs(t, err, breaker.ErrOpen, "refused by the limiter, not by the breaker")
				}
				require.Zero(t, srv.count("m"), "nothing was sent")
				status, err := send(t, rt, chat(t, "m"))
				require.NoError(t, err, "the model's breaker is closed")
				assert.Equal(t, http.StatusOK, status)
				assert.Equal(t, 1, srv.count("m"))
			})
		})
	}
}
