package conformance_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

func ExampleEventRecorder() {
	var rec conformance.EventRecorder
	hook := transport.EventFunc(rec.Record) // what a decorator's OnEvent option takes
	hook.Emit(transport.Event{Kind: transport.EventRetry, Status: 429, Attempt: 1})
	hook.Emit(transport.Event{Kind: transport.EventDone, Status: 200, Attempt: 2})
	for _, e := range rec.Events() {
		fmt.Println(e.Kind, e.Status, e.Attempt)
	}
	// Output:
	// retry 429 1
	// done 200 2
}

func TestEventRecorderFromManyGoroutines(t *testing.T) {
	var rec conformance.EventRecorder
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { rec.Record(transport.Event{Attempt: i}) })
	}
	wg.Wait()
	events := rec.Events()
	assert.Len(t, events, 50)
	seen := map[int]bool{}
	for _, e := range events {
		seen[e.Attempt] = true
	}
	assert.Len(t, seen, 50, "every event kept once")
	events[0].Attempt = -1
	assert.NotEqual(t, -1, rec.Events()[0].Attempt, "Events returns a copy")
}
