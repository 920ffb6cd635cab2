package breaker_test

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

func TestEventsFollowTheBreakersStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("down", 503)
		var mu sync.Mutex
		var events []transport.Event
		rt := breaker.New(breaker.WithEvents(func(e transport.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}))(srv)

		for range breaker.DefaultConsecutiveFailures {
			_, _ = send(t, rt, chat(t, "down"))
		}
		_, err := send(t, rt, chat(t, "healthy"))
		require.NoError(t, err, "another model's breaker says nothing")
		srv.set("down", 200)
		time.Sleep(breaker.DefaultTimeout)
		for range breaker.DefaultHalfOpenProbes {
			_, err := send(t, rt, chat(t, "down"))
			require.NoError(t, err)
		}

		ev := func(from, to string) transport.Event {
			return transport.Event{Kind: transport.EventBreaker, Key: "api.together.xyz down", Endpoint: transport.EndpointChat,
				Model: "down", From: from, To: to}
		}
		assert.Equal(t, []transport.Event{ev("closed", "open"), ev("open", "half-open"), ev("half-open", "closed")}, events)
	})
}

func TestAPanickingEventHookDoesNotBreakTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("down", 503)
		calls := 0
		rt := breaker.New(breaker.WithEvents(func(transport.Event) { calls++; panic("broken hook") }))(srv)
		for range breaker.DefaultConsecutiveFailures {
			status, err := send(t, rt, chat(t, "down"))
			require.NoError(t, err)
			assert.Equal(t, 503, status)
		}
		_, err := send(t, rt, chat(t, "down"))
		assert.ErrorIs(t, err, breaker.ErrOpen, "the breaker opened although its hook panicked")
		assert.Equal(t, 1, calls)
	})
}
