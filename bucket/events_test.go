package bucket_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// kinds lists the kinds of the events recorded.
func kinds(rec *conformance.EventRecorder) []transport.EventKind {
	var out []transport.EventKind
	for _, e := range rec.Events() {
		out = append(out, e.Kind)
	}
	return out
}

func TestEventsOfWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		rt := bucket.Limit(bucket.New(bucket.PerSecond(2)), bucket.WithEvents(log.Record))(newScript(ok))
		for range 3 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		wait := func(d time.Duration) transport.Event {
			return transport.Event{Kind: transport.EventWaited, Endpoint: transport.EndpointChat, Wait: d, Reason: "requests"}
		}
		assert.Equal(t, []transport.Event{wait(500 * time.Millisecond), wait(500 * time.Millisecond)}, log.Events(),
			"the first request went at once: no event")
	})
}

// A waited event carries the request's priority, so that a hook can tell
// a batch's expected waits from an interactive request's.
func TestEventsOfWaitsCarryThePriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		rt := bucket.Limit(bucket.New(bucket.PerSecond(2)), bucket.WithEvents(log.Record))(newScript(ok))
		for _, ctx := range []context.Context{batch, batch, interactive} {
			_, err := get(t, rt, ctx)
			require.NoError(t, err)
		}
		wait := func(p int) transport.Event {
			return transport.Event{Kind: transport.EventWaited, Endpoint: transport.EndpointChat,
				Wait: 500 * time.Millisecond, Priority: p, Reason: "requests"}
		}
		assert.Equal(t, []transport.Event{wait(transport.PriorityBatch), wait(transport.PriorityInteractive)}, log.Events())
	})
}

func TestEventsOfTokenWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		rt := bucket.Limit(bucket.New(bucket.PerSecond(10), bucket.WithBurst(10), bucket.WithInitial(0)),
			bucket.WithUnits(bucket.TextTokens), bucket.WithCost(func(*http.Request) int { return 5 }),
			bucket.WithEvents(log.Record))(newScript(ok))
		_, err := get(t, rt, context.Background())
		require.NoError(t, err)
		assert.Equal(t, []transport.Event{{Kind: transport.EventWaited, Endpoint: transport.EndpointChat,
			Wait: 500 * time.Millisecond, Reason: "tokens"}}, log.Events())
	})
}

func TestEventsOfAPauseAndTheRatesAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		srv := newScript(func(i int) (int, http.Header) {
			if i == 1 {
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b, bucket.WithEvents(log.Record))(srv)
		for range 2 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		// The 429 pauses the bucket for its reset and lowers the rate
		// blindly (nothing measured yet): to 10 × 0.7.
		events := log.Events()
		require.Len(t, events, 3)
		assert.Equal(t, transport.Event{Kind: transport.EventWaited, Endpoint: transport.EndpointChat,
			Wait: 100 * time.Millisecond, Reason: "requests"}, events[0])
		assert.Equal(t, transport.Event{Kind: transport.EventPaused, Endpoint: transport.EndpointChat,
			Status: 429, Wait: time.Second, Reason: "requests"}, events[1])
		assert.Equal(t, transport.EventRateChanged, events[2].Kind)
		assert.InDelta(t, 7, events[2].Rate, 1e-9)
		assert.Equal(t, "requests", events[2].Reason)

		// Three minutes of answers raise the rate along the cubic, back to
		// the ceiling: each raise is reported, in order.
		for range 1500 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		var rates []float64
		for _, e := range log.Events()[3:] {
			switch e.Kind {
			case transport.EventRateChanged:
				rates = append(rates, e.Rate)
			case transport.EventWaited:
			default:
				t.Errorf("unexpected %v", e.Kind)
			}
		}
		require.NotEmpty(t, rates)
		assert.IsIncreasing(t, rates)
		assert.Equal(t, 10.0, rates[len(rates)-1], "back to the ceiling")
		assert.Equal(t, b.Rate().PerSecond(), rates[len(rates)-1], "the last event is the bucket's rate")
	})
}

func TestEventsOf429sThatBelongToAPause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		// Three requests in flight at once are all refused: one pause, one
		// lowering of the rate, three 429s reported.
		srv := newScript(func(int) (int, http.Header) {
			return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
		})
		gate := make(chan struct{})
		slow := transport.Func(func(req *http.Request) (*http.Response, error) {
			<-gate
			return srv.RoundTrip(req)
		})
		rt := bucket.Limit(bucket.New(bucket.PerSecond(100), bucket.WithBurst(3), bucket.WithInitial(3)),
			bucket.WithEvents(log.Record))(slow)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				_, err := get(t, rt, context.Background())
				assert.NoError(t, err)
			})
		}
		synctest.Wait()
		close(gate)
		wg.Wait()
		assert.Equal(t, []transport.EventKind{
			transport.EventPaused, transport.EventRateChanged, transport.EventPaused, transport.EventPaused,
		}, kinds(&log))
	})
}

func TestAPanickingEventHookDoesNotBreakLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			if i == 1 {
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
			}
			return http.StatusOK, nil
		})
		calls := 0
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b, bucket.WithEvents(func(transport.Event) { calls++; panic("broken hook") }))(srv)
		for range 3 {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.Equal(t, []time.Duration{0, 100 * time.Millisecond, 1100 * time.Millisecond}, srv.arrivals(),
			"the pause held although the hook panicked under the limiter's lock")
		assert.InDelta(t, 7, b.Rate().PerSecond(), 1e-9)
		assert.Equal(t, 4, calls, "waited, paused, rate changed, waited")

		// The limiter's lock was released: another request goes through.
		_, err := get(t, rt, context.Background())
		require.NoError(t, err)
	})
}
