// Package slogobserve writes steady's events ([transport.Event]) as
// structured log/slog records: one record per event, at a level that says
// how much it matters, with only the fields the event sets.
//
//	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
//	client := together.NewClient(together.WithEvents(slogobserve.New(logger)))
//
// The same hook fits each decorator alone: retry.Policy.OnEvent,
// bucket.OnEvent, breaker.Settings.OnEvent, transport.FallbackEvents.
//
// # Levels
//
// [Level] chooses the level of each event. Warn is for what an operator
// should act on: a breaker that opened and a request given up on after a
// failure that is retried. Info is for the limiter and the models adapting
// to the provider: a server-directed pause (a 429), a change of rate, a
// fallback to another model, a breaker closing or half-opening. Debug is
// for what happens to single requests as a matter of course: a wait for
// tokens, a retry, a finished request.
//
// # Records
//
// The message names what happened ("paused by the server", "retrying", ...);
// the attributes are event (the [transport.EventKind]), endpoint, model,
// wait, status, error, rate (tokens a second), attempt, from, to and reason,
// each present only when the event sets it. Events carry no request
// header, URL or body, so no record holds the API key.
//
// Records are written only when the logger is enabled for their level; a
// disabled level costs one call to [slog.Logger.Enabled].
package slogobserve
