package conformance_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/steadyapi/steady/conformance"
)

// A decorator's own test runs the whole contract on it. The middleware is
// called inside each scenario, so a decorator with state (a limiter, a
// breaker) builds it there, in the suite's virtual time.
func ExampleTestMiddleware() {
	logging := func(next http.RoundTripper) http.RoundTripper {
		return next // a decorator that only observes keeps the contract
	}
	_ = func(t *testing.T) {
		conformance.TestMiddleware(t, logging)
	}
}

// The rules, in the order of every report; a test that pins the rules a
// peer breaks names them.
func ExampleRules() {
	for _, r := range conformance.Rules() {
		fmt.Println(r)
	}
	// Output:
	// request-unmodified
	// request-body-closed
	// body-replayed
	// not-resent
	// retry-after
	// discarded-drained
	// returned-not-read
	// response-intact
	// answer-kept
	// response-or-error
	// context-canceled
	// context-deadline
	// pause-bounded
	// no-goroutine-leak
	// concurrent-use
	// secret-hidden
}
