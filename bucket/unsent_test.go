package bucket_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// A request that a limiter inside refuses for its deadline (a token limit
// under a request limit) was never sent: the outer limiter gives its
// tokens back, and the next request takes them at once.
func TestARequestRefusedInsideGivesTheOuterTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		cost := func(req *http.Request) int {
			if req.Header.Get("X-Free") != "" {
				return 0
			}
			return 1
		}
		rt := transport.Chain(srv,
			bucket.Limit(bucket.New(bucket.PerSecond(10))),
			bucket.Limit(bucket.New(bucket.PerSecond(1)), bucket.WithCost(cost)))
		send(t, rt, 1) // at 0: both limiters' first
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		// At 100ms the outer grants it; the inner's next is at 1s, past
		// the deadline: refused at once.
		_, err := get(t, rt, ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, errors.Is(err, transport.ErrDeadline))
		req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/models", nil)
		require.NoError(t, err)
		req.Header.Set("X-Free", "1")
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		transport.Drain(resp)
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond}, srv.arrivals(),
			"the outer token of the refused request goes to the next")
	})
}
