package transport_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestFallbackEvents(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503, "medium": 529}}
	var events []transport.Event
	rt := transport.Fallback(map[string][]string{"big": {"medium", "small"}},
		transport.WithEvents(func(e transport.Event) { events = append(events, e) }))(srv)
	resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
	ev := func(from, to string) transport.Event {
		return transport.Event{Kind: transport.EventFellBack, Endpoint: transport.EndpointChat, Model: "big",
			From: from, To: to, Reason: string(transport.FallbackOverloaded)}
	}
	assert.Equal(t, []transport.Event{ev("big", "medium"), ev("medium", "small")}, events)
}

func TestFallbackSurvivesAPanickingEventHook(t *testing.T) {
	srv := &modelServer{status: map[string]int{"big": 503}}
	calls := 0
	rt := transport.Fallback(map[string][]string{"big": {"small"}},
		transport.WithEvents(func(transport.Event) { calls++; panic("broken hook") }))(srv)
	resp, err := rt.RoundTrip(newChatRequest(t, chatRequest))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
	assert.Equal(t, 1, calls)
}
