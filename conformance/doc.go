// Package conformance holds what steady is measured against: a simulated
// provider, [Server], that behaves as Together AI documents (per-key rate
// limits enforced per second or per minute, dynamic limits, token limits,
// 429s with x-ratelimit-reset, fine-tune and batch caps, scripted faults),
// and the tools that drive middleware against it.
//
// The Server is an [net/http.RoundTripper], so a whole workload can run in
// memory inside a testing/synctest bubble, where minutes of traffic pass in
// milliseconds of virtual time and every wait is exact; and an
// [net/http.Handler], so real clients and SDKs can be pointed at it over
// loopback (see cmd/provider). It records every arrival, so a test asserts
// what the provider saw, not only what the client got:
//
//	srv := conformance.NewServer(conformance.Config{
//		Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 60}},
//	})
//	client := &http.Client{Transport: transport.Chain(srv, myMiddleware)}
//	// ... drive the client, then inspect srv.Arrivals() and srv.Stats().
package conformance
