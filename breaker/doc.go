// Package breaker is a circuit-breaker decorator that keeps one breaker per
// model, on sony/gobreaker/v2.
//
// It stops sending requests to a model that is failing, so a model that
// answers 503 for minutes is not hammered by every caller's retries, and a
// fallback (transport.Fallback) can serve the requests from another model
// at once instead of after a round of doomed attempts.
//
// [New] returns a [transport.Middleware] that keeps one circuit breaker per
// key, by default per host and model (the top-level "model" of the JSON
// request body, found without decoding it), each a sony/gobreaker
// TwoStepCircuitBreaker. 500, 502, 503, 504, 529 and transport errors count
// as failures (not a cancelled context, nor a request a limiter under the
// breaker refused before sending it, nor one net/http refuses to send,
// such as one with a line break in a header); five in a row, or half of at
// least 20 in 30 seconds, open the breaker. While open, requests fail at once with an error matching
// [ErrOpen] (and transport.ErrModelUnavailable); after the server's
// Retry-After, or 30 seconds, three probes go through, and the breaker closes
// when all three succeed; a probe with no answer after 30 seconds gives its
// place to another (see [WithProbeWait]), so a probe that hangs does not hold
// its model's requests back for as long as it hangs. The middleware only
// counts: answers are returned as they are, never read or closed by it.
//
//	rt := transport.Chain(http.DefaultTransport,
//		transport.Fallback(map[string][]string{"big": {"small"}}),
//		breaker.New(), // an open breaker sends "big" requests to "small"
//	)
package breaker
