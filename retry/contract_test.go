package retry_test

import (
	"testing"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
)

// New keeps the RoundTripper contract every decorator keeps: the caller's
// request untouched, its body closed and replayed byte-identical, a
// response or an error, discarded answers drained, the returned one unread,
// no wait past the deadline, a POST not sent again after a reset, the key
// never leaked, safe for concurrent use. It retries the suite's 503s, so
// the rules only retrying exercises are held to it.
func TestNewKeepsTheContract(t *testing.T) {
	conformance.TestMiddleware(t, retry.New(), conformance.WithRetriesExpected())
}
