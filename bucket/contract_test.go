package bucket_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
)

// Limit keeps the RoundTripper contract every decorator keeps: the
// caller's request untouched, its body closed, a response or an error,
// discarded answers drained, returned ones unread, no wait past the
// deadline, the key never leaked, safe for concurrent use.
func TestLimitKeepsTheContract(t *testing.T) {
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		return bucket.Limit(bucket.New(bucket.PerMinute(600)))(next)
	})
	conformance.TestMiddleware(t, func(next http.RoundTripper) http.RoundTripper {
		// A slow bucket, so that waits and deadlines meet.
		return bucket.Limit(bucket.New(bucket.PerMinute(6)))(next)
	})
}
