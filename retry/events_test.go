package retry_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

func TestEvents(t *testing.T) {
	refused := errors.Join(errors.New("dial tcp: connection refused"), syscall.ECONNREFUSED)
	const chat = transport.EndpointChat
	for _, tc := range []struct {
		name   string
		policy []retry.Option
		steps  []step
		ctx    func(context.Context) (context.Context, context.CancelFunc)
		want   []transport.Event
	}{{
		name:  "success at once: only done",
		steps: []step{ok()},
		want:  []transport.Event{{Kind: transport.EventDone, Endpoint: chat, Attempt: 1, Status: 200}},
	}, {
		name:   "a server wait, a backoff, then success",
		policy: []retry.Option{retry.WithRand(zeroRand), retry.WithBackoff(time.Second, 0)},
		steps:  []step{{status: 429, header: map[string]string{"Retry-After": "2"}}, {status: 503}, ok()},
		want: []transport.Event{
			{Kind: transport.EventRetry, Endpoint: chat, Attempt: 1, Status: 429, Wait: 2 * time.Second, Reason: retry.ReasonServer},
			{Kind: transport.EventRetry, Endpoint: chat, Attempt: 2, Status: 503, Reason: retry.ReasonBackoff},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 3, Status: 200},
		},
	}, {
		name:   "retries spent",
		policy: []retry.Option{retry.WithRand(zeroRand), retry.WithMaxRetries(1)},
		steps:  []step{{status: 503}},
		want: []transport.Event{
			{Kind: transport.EventRetry, Endpoint: chat, Attempt: 1, Status: 503, Reason: retry.ReasonBackoff},
			{Kind: transport.EventGaveUp, Endpoint: chat, Attempt: 2, Status: 503, Reason: retry.ReasonRetriesSpent},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 2, Status: 503},
		},
	}, {
		name:  "not retried: no give-up",
		steps: []step{{status: 400}},
		want:  []transport.Event{{Kind: transport.EventDone, Endpoint: chat, Attempt: 1, Status: 400}},
	}, {
		name:  "server wait over the cap",
		steps: []step{{status: 429, header: map[string]string{"Retry-After": "3600"}}},
		want: []transport.Event{
			{Kind: transport.EventGaveUp, Endpoint: chat, Attempt: 1, Status: 429, Reason: retry.ReasonServerWait},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 1, Status: 429},
		},
	}, {
		name:  "wait past the deadline",
		steps: []step{{status: 429, header: map[string]string{"Retry-After": "5"}}},
		ctx: func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Second)
		},
		want: []transport.Event{
			{Kind: transport.EventGaveUp, Endpoint: chat, Attempt: 1, Status: 429, Reason: retry.ReasonDeadline},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 1, Status: 429},
		},
	}, {
		name:   "budget spent",
		policy: []retry.Option{retry.WithBudget(1e-9, 0)},
		steps:  []step{{status: 503}},
		want: []transport.Event{
			{Kind: transport.EventGaveUp, Endpoint: chat, Attempt: 1, Status: 503, Reason: retry.ReasonBudget},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 1, Status: 503},
		},
	}, {
		name:   "transport errors",
		policy: []retry.Option{retry.WithRand(zeroRand), retry.WithMaxRetries(1)},
		steps:  []step{{err: refused}},
		want: []transport.Event{
			{Kind: transport.EventRetry, Endpoint: chat, Attempt: 1, Err: refused, Reason: retry.ReasonBackoff},
			{Kind: transport.EventGaveUp, Endpoint: chat, Attempt: 2, Err: refused, Reason: retry.ReasonRetriesSpent},
			{Kind: transport.EventDone, Endpoint: chat, Attempt: 2, Err: &retry.Error{Attempts: 2, Err: refused}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec conformance.EventRecorder
				ctx, cancel := context.WithCancel(t.Context())
				if tc.ctx != nil {
					ctx, cancel = tc.ctx(t.Context())
				}
				defer cancel()
				resp, err := wrap(append(tc.policy, retry.WithEvents(rec.Record)), play(tc.steps...)).RoundTrip(newRequest(t, ctx))
				if err == nil {
					resp.Body.Close()
				}
				assert.Equal(t, tc.want, rec.Events())
			})
		})
	}
}

func TestEventsWhenTheWaitIsCutShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec conformance.EventRecorder
		ctx, cancel := context.WithCancel(t.Context())
		p := []retry.Option{retry.WithRand(maxRand),
			retry.WithEvents(func(e transport.Event) {
				rec.Record(e)
				if e.Kind == transport.EventRetry {
					time.AfterFunc(100*time.Millisecond, cancel) // within the first wait (500 ms at most)
				}
			})}
		_, err := wrap(p, play(step{status: 503})).RoundTrip(newRequest(t, ctx))
		require.ErrorIs(t, err, context.Canceled)
		events := rec.Events()
		require.Len(t, events, 3)
		assert.Equal(t, transport.EventRetry, events[0].Kind)
		assert.Equal(t, transport.Event{Kind: transport.EventGaveUp, Endpoint: transport.EndpointChat,
			Attempt: 1, Status: 503, Reason: retry.ReasonCanceled}, events[1])
		assert.Equal(t, transport.EventDone, events[2].Kind)
		assert.Equal(t, err, events[2].Err, "done carries the error returned")
	})
}

func TestEventsWhenTheBodyCannotBeReplayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec conformance.EventRecorder
		body := io.NopCloser(strings.NewReader("a body larger than the limit"))
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, chatURL, body)
		require.NoError(t, err)
		resp, err := wrap([]retry.Option{retry.WithReplayLimit(8), retry.WithEvents(rec.Record)}, play(step{status: 503})).RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []transport.Event{
			{Kind: transport.EventGaveUp, Endpoint: transport.EndpointChat, Attempt: 1, Status: 503, Reason: retry.ReasonNotReplayable},
			{Kind: transport.EventDone, Endpoint: transport.EndpointChat, Attempt: 1, Status: 503},
		}, rec.Events())
	})
}

func TestEventsOfARequestNeverSent(t *testing.T) {
	var rec conformance.EventRecorder
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := wrap([]retry.Option{retry.WithEvents(rec.Record)}, play(ok())).RoundTrip(newRequest(t, ctx))
	require.Error(t, err)
	assert.Equal(t, []transport.Event{{Kind: transport.EventDone, Endpoint: transport.EndpointChat, Err: err}}, rec.Events())
}

func TestAPanickingEventHookDoesNotBreakTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		p := []retry.Option{retry.WithRand(zeroRand), retry.WithEvents(func(transport.Event) { calls++; panic("broken hook") })}
		inner := play(step{status: 503}, ok())
		resp, err := wrap(p, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "ok", readAll(t, resp))
		assert.Equal(t, 2, inner.attempts(), "the retry still happened")
		assert.Equal(t, 2, calls, "retry and done were both emitted")
	})
}
