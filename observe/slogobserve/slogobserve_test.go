package slogobserve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/transport"
)

// records logs events through a JSON handler at level and returns the
// records written, decoded, without their time.
func records(t *testing.T, level slog.Level, events ...transport.Event) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
	hook := slogobserve.New(logger)
	for _, e := range events {
		hook(e)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		delete(rec, slog.TimeKey)
		out = append(out, rec)
	}
	return out
}

func TestRecords(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event transport.Event
		want  map[string]any
	}{{
		name:  "waited",
		event: transport.Event{Kind: transport.EventWaited, Endpoint: "chat", Model: "m", Wait: 1500 * time.Millisecond},
		want:  map[string]any{"level": "DEBUG", "msg": "waited for rate limit tokens", "event": "waited", "endpoint": "chat", "model": "m", "wait": 1.5e9},
	}, {
		name:  "waited, batch",
		event: transport.Event{Kind: transport.EventWaited, Endpoint: "embeddings", Wait: time.Minute, Priority: transport.PriorityBatch},
		want:  map[string]any{"level": "DEBUG", "msg": "waited for rate limit tokens", "event": "waited", "endpoint": "embeddings", "wait": 6e10, "priority": -100.0},
	}, {
		name:  "paused",
		event: transport.Event{Kind: transport.EventPaused, Endpoint: "embeddings", Model: "m", Status: 429, Wait: 2 * time.Second},
		want:  map[string]any{"level": "INFO", "msg": "paused by the server", "event": "paused", "endpoint": "embeddings", "model": "m", "status": 429.0, "wait": 2e9},
	}, {
		name:  "rate changed",
		event: transport.Event{Kind: transport.EventRateChanged, Endpoint: "chat", Model: "m", Rate: 9, Reason: "requests"},
		want:  map[string]any{"level": "INFO", "msg": "rate limit changed", "event": "rate changed", "endpoint": "chat", "model": "m", "rate": 9.0, "reason": "requests"},
	}, {
		name:  "retry",
		event: transport.Event{Kind: transport.EventRetry, Endpoint: "chat", Attempt: 1, Status: 503, Wait: 250 * time.Millisecond, Reason: "backoff"},
		want:  map[string]any{"level": "DEBUG", "msg": "retrying", "event": "retry", "endpoint": "chat", "attempt": 1.0, "status": 503.0, "wait": 2.5e8, "reason": "backoff"},
	}, {
		name:  "gave up",
		event: transport.Event{Kind: transport.EventGaveUp, Endpoint: "chat", Attempt: 5, Err: errors.New("connection refused"), Reason: "retries spent"},
		want:  map[string]any{"level": "WARN", "msg": "gave up retrying", "event": "gave up", "endpoint": "chat", "attempt": 5.0, "error": "connection refused", "reason": "retries spent"},
	}, {
		name:  "done",
		event: transport.Event{Kind: transport.EventDone, Attempt: 1, Status: 200},
		want:  map[string]any{"level": "DEBUG", "msg": "request done", "event": "done", "attempt": 1.0, "status": 200.0},
	}, {
		name:  "breaker opened",
		event: transport.Event{Kind: transport.EventBreaker, Endpoint: "chat", Model: "m", From: "closed", To: "open"},
		want:  map[string]any{"level": "WARN", "msg": "circuit breaker changed state", "event": "breaker", "endpoint": "chat", "model": "m", "from": "closed", "to": "open"},
	}, {
		name:  "breaker half-open",
		event: transport.Event{Kind: transport.EventBreaker, Endpoint: "chat", Model: "m", From: "open", To: "half-open"},
		want:  map[string]any{"level": "INFO", "msg": "circuit breaker changed state", "event": "breaker", "endpoint": "chat", "model": "m", "from": "open", "to": "half-open"},
	}, {
		name:  "fell back",
		event: transport.Event{Kind: transport.EventFellBack, Endpoint: "chat", Model: "big", From: "big", To: "small", Reason: "overloaded"},
		want:  map[string]any{"level": "INFO", "msg": "fell back to another model", "event": "fell back", "endpoint": "chat", "model": "big", "from": "big", "to": "small", "reason": "overloaded"},
	}, {
		name:  "breaker with its key",
		event: transport.Event{Kind: transport.EventBreaker, Key: "api.example.com m", Model: "m", From: "half-open", To: "closed"},
		want:  map[string]any{"level": "INFO", "msg": "circuit breaker changed state", "event": "breaker", "model": "m", "key": "api.example.com m", "from": "half-open", "to": "closed"},
	}, {
		name:  "store gone local",
		event: transport.Event{Kind: transport.EventStore, From: "shared", To: "local", Rate: 0.25, Err: errors.New("i/o timeout")},
		want:  map[string]any{"level": "WARN", "msg": "shared limiter store changed", "event": "store", "from": "shared", "to": "local", "rate": 0.25, "error": "i/o timeout"},
	}, {
		name:  "store shared again",
		event: transport.Event{Kind: transport.EventStore, From: "local", To: "shared"},
		want:  map[string]any{"level": "INFO", "msg": "shared limiter store changed", "event": "store", "from": "local", "to": "shared"},
	}, {
		name:  "catalog fetched",
		event: transport.Event{Kind: transport.EventCatalog, Endpoint: "models", Wait: 80 * time.Millisecond, Status: 200},
		want:  map[string]any{"level": "DEBUG", "msg": "model catalog fetched", "event": "catalog", "endpoint": "models", "wait": float64(80 * time.Millisecond), "status": float64(200)},
	}, {
		name:  "batch failed",
		event: transport.Event{Kind: transport.EventBatch, Endpoint: "embeddings", Model: "e", Count: 20, Wait: time.Second, Status: 400},
		want:  map[string]any{"level": "WARN", "msg": "batch done", "event": "batch", "endpoint": "embeddings", "model": "e", "count": float64(20), "wait": float64(time.Second), "status": float64(400)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := records(t, slog.LevelDebug, tc.event)
			require.Len(t, got, 1)
			assert.Equal(t, tc.want, got[0])
		})
	}
}

func TestDisabledLevelsWriteNothing(t *testing.T) {
	got := records(t, slog.LevelWarn,
		transport.Event{Kind: transport.EventWaited, Wait: time.Second},
		transport.Event{Kind: transport.EventRetry, Attempt: 1},
		transport.Event{Kind: transport.EventPaused, Status: 429},
		transport.Event{Kind: transport.EventBreaker, From: "closed", To: "open"},
	)
	require.Len(t, got, 1)
	assert.Equal(t, "breaker", got[0]["event"])
}

// countingHandler counts the records handled and the Enabled calls.
type countingHandler struct {
	enabled, handled int
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { h.enabled++; return false }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.handled++
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

func TestADisabledLevelCostsOneEnabledCall(t *testing.T) {
	h := &countingHandler{}
	hook := slogobserve.New(slog.New(h))
	hook(transport.Event{Kind: transport.EventRetry, Attempt: 1})
	assert.Equal(t, 1, h.enabled)
	assert.Zero(t, h.handled)
}

func TestNilLoggerMeansTheDefault(t *testing.T) {
	var buf bytes.Buffer
	old := slog.Default()
	t.Cleanup(func() { slog.SetDefault(old) })
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	slogobserve.New(nil)(transport.Event{Kind: transport.EventPaused, Status: 429, Wait: time.Second})
	assert.Contains(t, buf.String(), `msg="paused by the server" event=paused wait=1s status=429`)
}

func TestUnknownKind(t *testing.T) {
	got := records(t, slog.LevelDebug, transport.Event{Kind: 99})
	require.Len(t, got, 1)
	assert.Equal(t, map[string]any{"level": "DEBUG", "msg": "EventKind(99)", "event": "EventKind(99)"}, got[0])
}

// panickyError is an error whose Error method panics on any value.
type panickyError struct{}

func (*panickyError) Error() string { panic("broken Error method") }

// An error that is a nil pointer, or whose Error method panics, is logged
// as slog itself logs one: the record is written, and the hook does not
// panic (which would lose the event, and the events of the hooks after it).
func TestOddErrors(t *testing.T) {
	got := records(t, slog.LevelDebug,
		transport.Event{Kind: transport.EventGaveUp, Attempt: 2, Err: (*url.Error)(nil)},
		transport.Event{Kind: transport.EventGaveUp, Attempt: 3, Err: &panickyError{}},
	)
	require.Len(t, got, 2)
	assert.Equal(t, map[string]any{"level": "WARN", "msg": "gave up retrying", "event": "gave up", "attempt": 2.0, "error": "<nil>"}, got[0])
	assert.Equal(t, map[string]any{"level": "WARN", "msg": "gave up retrying", "event": "gave up", "attempt": 3.0, "error": "!PANIC: broken Error method"}, got[1])
}
