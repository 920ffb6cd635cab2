// Package conformance holds what steady is measured against: a simulated
// provider, [Server], that behaves as Together AI documents (per-key rate
// limits enforced per second, dynamic limits, token limits, 429s with
// x-ratelimit-reset, fine-tune and batch caps, scripted faults) or as the
// other servers a client meets do (nginx's limit_req, sliding-window logs,
// fixed windows as express-rate-limit keeps them, the header dialects of
// OpenAI, Anthropic and the IETF drafts: see [Limit], [Algorithm] and
// [Headers]), and the tools that drive middleware against it.
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
//
// # The contract suite
//
// [TestMiddleware], in the spirit of testing/fstest.TestFS, checks any
// [github.com/steadyapi/steady/transport.Middleware] against the
// RoundTripper contract every steady decorator keeps: the caller's request
// not modified and its body closed, bodies replayed byte-identical, a
// request the server may have processed not sent again after a connection
// reset, discarded responses drained and closed, returned bodies not read,
// deadlines and cancellation honoured, no goroutine leaked, safe for
// concurrent use, no secret in an error. [CheckMiddleware] returns the
// per-rule [Report] instead of failing the test, which is how peers are
// held to the same rules.
//
// # Scenarios and the oracle
//
// [Run] puts a [Stack] in front of a fresh Server and drives a [Scenario]'s
// workload through it, inside a synctest bubble, and measures the
// [Outcome]: requests that succeeded, failed or hung, what the server saw,
// and the two figures a stack is graded by: its time against the
// oracle's ([Outcome.Ratio]; the oracle is a client that knows the
// server's state and sends each request at the first instant the server
// would admit it, [Scenario.Least]) and the share of its arrivals
// answered 429 ([Outcome.TooManyShare]). [Scenarios] is the set the
// comparison in docs/ runs (go run ./compare), against the naive port of
// the guide's algorithm ([Naive]), go-retryablehttp, failsafe-go and
// steady's stacks.
//
// # The matrix
//
// [Matrix] is the set of server models a rate controller is graded on,
// each with its [Goal]: Together's dynamic limit, per-second buckets with
// and without burst, sliding and fixed windows, token limits, every header
// dialect. [RunMatrix] runs a stack over it, told the right limit, twice
// the limit and nothing ([Told]), one bubble per run, and
// [WriteMatrixTable] writes the results down:
//
//	results := conformance.RunMatrix(t, conformance.Matrix(), func(told conformance.Told) conformance.Stack {
//		return conformance.Stack{Name: "mine", Wrap: myMiddleware(told.RPM)}
//	})
//	for _, r := range results {
//		assert.True(t, r.Met(), "%s, told %s", r.Case.Title, r.Told)
//	}
package conformance
