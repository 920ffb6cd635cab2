package bucket_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
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
		rt := nestedLimits(srv, bucket.New(bucket.PerSecond(10)), bucket.New(bucket.PerSecond(1)))
		send(t, rt, 1) // at 0: both limiters' first
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		// At 100ms the outer grants it; the inner's next is at 1s, past
		// the deadline: refused at once.
		_, err := get(t, rt, ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.True(t, errors.Is(err, transport.ErrDeadline))
		sendFree(t, rt)
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond}, srv.arrivals(),
			"the outer token of the refused request goes to the next")
	})
}

// A request whose context ends while it waits in a limiter inside (a
// token limit under a request limit) was never sent either: the outer
// limiter gives its tokens back, as for a refusal for its deadline.
func TestARequestCancelledInsideGivesTheOuterTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		rt := nestedLimits(srv, bucket.New(bucket.PerSecond(10)), bucket.New(bucket.PerSecond(1)))
		send(t, rt, 1) // at 0: both limiters' first
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(150*time.Millisecond, cancel)
		// At 100ms the outer grants it; the inner's next is at 1s: it
		// queues there, and is cancelled at 150ms, unsent.
		_, err := get(t, rt, ctx)
		require.ErrorIs(t, err, context.Canceled)
		sendFree(t, rt)
		assert.Equal(t, []time.Duration{0, 150 * time.Millisecond}, srv.arrivals(),
			"the outer token of the cancelled request goes to the next")
	})
}

// The same when the request's deadline ends its wait inside while it is
// queued: its turn fitted the deadline when it queued, and an interactive
// wait that came after took that turn. The request was never sent, and
// the outer token it holds goes to the outer queue behind it.
func TestARequestWhoseDeadlineEndsItsWaitInsideGivesTheOuterTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		inner := bucket.New(bucket.PerSecond(0.5)) // one every 2 s
		rt := nestedLimits(srv, bucket.New(bucket.PerSecond(1)), inner)
		start := time.Now()
		send(t, rt, 1) // at 0: both limiters' first
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(2500*time.Millisecond))
		defer cancel()
		done := make(chan error, 1)
		go func() { _, err := get(t, rt, ctx); done <- err }() // outer at 1 s; inner's turn at 2 s fits
		synctest.Wait()
		go sendFree(t, rt) // outer at 2 s
		synctest.Wait()
		go sendFree(t, rt) // outer at 3 s, or at 2.5 s once the unsent request's token is back
		synctest.Wait()
		time.Sleep(1500 * time.Millisecond)
		go func() { _ = inner.Wait(interactive, 1) }() // takes the turn at 2 s
		err := <-done
		require.ErrorIs(t, err, context.DeadlineExceeded)
		time.Sleep(5 * time.Second)
		assert.Equal(t, []time.Duration{0, 2 * time.Second, 2500 * time.Millisecond}, srv.arrivals(),
			"the outer token of the unsent request goes to the waiter behind it")
	})
}

// A request refused for its deadline before it was sent fails with an
// error that is its context's, and a timeout to http.Client's url.Error,
// which reads Timeout without unwrapping.
func TestARequestRefusedForItsDeadlineIsATimeoutToTheClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(ok)
		client := &http.Client{Transport: bucket.Limit(bucket.New(bucket.PerSecond(1)))(srv)}
		send(t, client.Transport, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.example.com/v1/models", nil)
		require.NoError(t, err)
		_, err = client.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var ue *url.Error
		require.ErrorAs(t, err, &ue)
		assert.True(t, ue.Timeout(), "a timeout: %v", err)
	})
}

// freeOrOne is the cost of a request: nothing for one marked X-Free, which
// only an outer limiter counts, one otherwise.
func freeOrOne(req *http.Request) int {
	if req.Header.Get("X-Free") != "" {
		return 0
	}
	return 1
}

// sendFree sends a request marked X-Free through rt, which must answer it.
func sendFree(t *testing.T, rt http.RoundTripper) {
	req, err := http.NewRequest(http.MethodGet, "https://api.example.com/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("X-Free", "1")
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	transport.Drain(resp)
}

// nestedLimits is a request limit of outer around one of inner, whose
// requests marked free (freeOrOne) cost nothing, over srv: a limiter
// inside that refuses or cancels a request the outer one let through.
func nestedLimits(srv http.RoundTripper, outer, inner *bucket.Bucket) http.RoundTripper {
	return transport.Chain(srv, bucket.Limit(outer), bucket.Limit(inner, bucket.WithCost(freeOrOne)))
}
