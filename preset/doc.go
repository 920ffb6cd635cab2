// Package preset is the builder steady's provider presets share: a
// provider is described by a [Spec] (its API root, how its key is sent,
// its routes by endpoint with their limits, retries, breakers and
// fallback), and [New] turns a Spec into the stack that serves it.
//
// The presets (together, openai, anthropic) are each a Spec and what is
// truly their provider's; a provider without a preset of its own is a
// Spec away:
//
//	spec := preset.Spec{
//		Name:    "groq",
//		BaseURL: "https://api.groq.com/openai/v1",
//		KeyEnv:  "GROQ_API_KEY",
//		Auth:    preset.Bearer,
//		Routes: map[string]preset.Route{
//			transport.EndpointChat: {Limit: true, RPM: 30, Breaker: true, Fallback: true},
//		},
//	}
//	client := &http.Client{Transport: preset.New(spec, nil)}
//
// Every request passes, outermost first: [transport.Inspect] (the body is
// read once for the whole stack), the route of its endpoint
// ([transport.Route]), and in the route: its guard, [transport.Fallback],
// the retry decorator (whose rule returns a 429 that says the account is
// out of quota at once, never retried), per-model circuit breakers and
// per-model limiters ([bucket.Keyed], which such a 429 neither pauses nor
// slows) around the base transport. The order is
// explained where [New] assembles it.
//
// Errors of every preset are [*APIError]s, read by [CheckResponse] from
// any of the providers' error bodies, and matched by kind with errors.Is:
// [ErrRateLimited], [ErrQuotaExceeded], [ErrOverloaded],
// [ErrModelNotFound], [ErrSpendingLimit], [ErrUnauthorized].
package preset
