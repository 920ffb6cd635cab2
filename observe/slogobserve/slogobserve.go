package slogobserve

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/steadyapi/steady/transport"
)

// New returns an event hook that logs each event to logger (nil means
// [slog.Default]) at the level [Level] gives it.
func New(logger *slog.Logger) transport.EventFunc {
	return func(e transport.Event) {
		l := logger
		if l == nil {
			l = slog.Default()
		}
		level := Level(e)
		ctx := context.Background()
		if !l.Enabled(ctx, level) {
			return
		}
		var buf [14]slog.Attr
		l.LogAttrs(ctx, level, Message(e.Kind), Attrs(buf[:0], e)...)
	}
}

// Level is the level an event is logged at: Warn for a breaker that
// opened, a request given up on, a shared store gone local and a catalog
// or batch that failed; Info for a pause, a change of rate, a fallback, the
// other changes of a breaker and a store shared again; Debug for a wait for
// tokens, a retry, a finished request, a catalog fetched and a batch done.
func Level(e transport.Event) slog.Level {
	switch e.Kind {
	case transport.EventGaveUp:
		return slog.LevelWarn
	case transport.EventBreaker, transport.EventStore:
		if e.To == "open" || e.To == "local" {
			return slog.LevelWarn
		}
		return slog.LevelInfo
	case transport.EventPaused, transport.EventRateChanged, transport.EventFellBack:
		return slog.LevelInfo
	case transport.EventCatalog, transport.EventBatch:
		if e.Err != nil || e.Status >= 300 {
			return slog.LevelWarn
		}
	}
	return slog.LevelDebug
}

var messages = map[transport.EventKind]string{
	transport.EventWaited:      "waited for rate limit tokens",
	transport.EventPaused:      "paused by the server",
	transport.EventRateChanged: "rate limit changed",
	transport.EventRetry:       "retrying",
	transport.EventGaveUp:      "gave up retrying",
	transport.EventDone:        "request done",
	transport.EventBreaker:     "circuit breaker changed state",
	transport.EventFellBack:    "fell back to another model",
	transport.EventStore:       "shared limiter store changed",
	transport.EventCatalog:     "model catalog fetched",
	transport.EventBatch:       "batch done",
}

// Message is the message of an event's record.
func Message(k transport.EventKind) string {
	if m, ok := messages[k]; ok {
		return m
	}
	return k.String()
}

// Attrs appends the attributes of e's record to dst: event, then each
// field e sets.
func Attrs(dst []slog.Attr, e transport.Event) []slog.Attr {
	dst = append(dst, slog.String("event", e.Kind.String()))
	if e.Endpoint != "" {
		dst = append(dst, slog.String("endpoint", e.Endpoint))
	}
	if e.Model != "" {
		dst = append(dst, slog.String("model", e.Model))
	}
	if e.Key != "" {
		dst = append(dst, slog.String("key", e.Key))
	}
	if e.Wait != 0 || e.Kind == transport.EventWaited || e.Kind == transport.EventRetry || e.Kind == transport.EventPaused {
		dst = append(dst, slog.Duration("wait", e.Wait))
	}
	if e.Status != 0 {
		dst = append(dst, slog.Int("status", e.Status))
	}
	if e.Err != nil {
		dst = append(dst, slog.String("error", errorText(e.Err)))
	}
	if e.Rate != 0 {
		dst = append(dst, slog.Float64("rate", e.Rate))
	}
	if e.Attempt != 0 {
		dst = append(dst, slog.Int("attempt", e.Attempt))
	}
	if e.Priority != 0 {
		dst = append(dst, slog.Int("priority", e.Priority))
	}
	if e.Count != 0 {
		dst = append(dst, slog.Int("count", e.Count))
	}
	if e.From != "" {
		dst = append(dst, slog.String("from", e.From))
	}
	if e.To != "" {
		dst = append(dst, slog.String("to", e.To))
	}
	if e.Reason != "" {
		dst = append(dst, slog.String("reason", e.Reason))
	}
	return dst
}

// errorText is err.Error(), written as slog writes an error value whose
// method panics: "<nil>" for a nil pointer, "!PANIC: ..." otherwise. A
// hook that panicked would lose the event, and every hook's after it.
func errorText(err error) (text string) {
	defer func() {
		if p := recover(); p != nil {
			if v := reflect.ValueOf(err); v.Kind() == reflect.Pointer && v.IsNil() {
				text = "<nil>"
				return
			}
			text = fmt.Sprintf("!PANIC: %v", p)
		}
	}()
	return err.Error()
}
