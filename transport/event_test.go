package transport_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/transport"
)

func TestEventKindString(t *testing.T) {
	for kind, want := range map[transport.EventKind]string{
		transport.EventWaited:      "waited",
		transport.EventPaused:      "paused",
		transport.EventRateChanged: "rate changed",
		transport.EventRetry:       "retry",
		transport.EventGaveUp:      "gave up",
		transport.EventDone:        "done",
		transport.EventBreaker:     "breaker",
		transport.EventFellBack:    "fell back",
		0:                          "EventKind(0)",
		200:                        "EventKind(200)",
	} {
		assert.Equal(t, want, kind.String())
	}
}

func TestEmitRecoversAPanickingHook(t *testing.T) {
	var nilHook transport.EventFunc
	assert.NotPanics(t, func() { nilHook.Emit(transport.Event{Kind: transport.EventRetry}) })

	calls := 0
	broken := transport.EventFunc(func(transport.Event) { calls++; panic("broken hook") })
	assert.NotPanics(t, func() { broken.Emit(transport.Event{Kind: transport.EventRetry}) })
	assert.Equal(t, 1, calls)
}

func TestEventsHandsEachEventToEveryHook(t *testing.T) {
	assert.Nil(t, transport.Events(), "no hook: decorators skip events")
	assert.Nil(t, transport.Events(nil, nil))

	var got []string
	first := func(e transport.Event) { got = append(got, "first "+e.Kind.String()) }
	broken := func(transport.Event) { panic("broken hook") }
	last := func(e transport.Event) { got = append(got, "last "+e.Kind.String()) }

	one := transport.Events(nil, first)
	one(transport.Event{Kind: transport.EventWaited, Wait: time.Second})
	assert.Equal(t, []string{"first waited"}, got)

	got = nil
	all := transport.Events(first, nil, broken, last)
	assert.NotPanics(t, func() { all.Emit(transport.Event{Kind: transport.EventPaused}) })
	assert.Equal(t, []string{"first paused", "last paused"}, got, "a panicking hook does not keep the event from the others")
}
