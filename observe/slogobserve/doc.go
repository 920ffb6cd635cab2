// Package slogobserve logs steady's events as log/slog records.
//
// It writes each [transport.Event] as a structured record: one record per
// event, at a level that says
// how much it matters, with only the fields the event sets.
//
//	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
//	client := together.NewClient(together.WithEvents(slogobserve.New(logger)))
//
// The same hook fits each decorator alone (each takes a WithEvents option:
// retry.WithEvents, bucket.WithEvents, breaker.WithEvents,
// transport.WithEvents for Fallback) and a shared store
// (redisbucket.WithEvents).
//
// # Levels
//
// [Level] chooses the level of each event. Warn is for what an operator
// should act on: a breaker that opened, a request given up on after a
// failure that is retried, a shared store gone local, a catalog fetch or a
// batch that failed. Info is for the limiter and the models adapting to the
// provider: a server-directed pause (a 429), a change of rate, a fallback
// to another model, a breaker closing or half-opening, a store shared
// again. Debug is for what happens to single requests as a matter of
// course: a wait for tokens, a retry, a finished request, a catalog
// fetched, a batch done.
//
// # Records
//
// The message names what happened ("paused by the server", "retrying", ...);
// the attributes are event (the [transport.EventKind]), endpoint, model,
// key, wait, status, error, rate (tokens a second), attempt, priority,
// count, from, to and reason,
// each present only when the event sets it. Events carry no request
// header, URL or body, so no record holds the API key.
//
// Records are written only when the logger is enabled for their level; a
// disabled level costs one call to [slog.Logger.Enabled].
package slogobserve
