package conformance

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/retry"
)

// Every decorator of the project keeps the contract. Each is built inside
// the suite's scenarios, so its state (budget, bucket) lives in their
// virtual time.
func TestProjectDecoratorsContract(t *testing.T) {
	t.Run("retry", func(t *testing.T) {
		TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
			return retry.New()(next)
		}, WithRetriesExpected())
	})
	t.Run("bucket.Limit", func(t *testing.T) {
		TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
			return bucket.Limit(bucket.New(bucket.PerMinute(600)))(next)
		})
	})
}
