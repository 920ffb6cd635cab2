package together_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

// TestContract checks the whole preset against the RoundTripper contract
// every decorator of steady keeps.
func TestContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return together.NewTransport(next, together.WithAPIKey("contract-key"))
	}, conformance.WithRetriesExpected())
}
