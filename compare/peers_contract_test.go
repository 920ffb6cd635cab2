package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// peerRetryableHTTP is go-retryablehttp as a middleware: its client, four
// retries and short waits, around next.
func peerRetryableHTTP(next http.RoundTripper) http.RoundTripper {
	c := retryablehttp.NewClient()
	c.RetryMax = 4
	c.RetryWaitMin = 10 * time.Millisecond
	c.RetryWaitMax = 100 * time.Millisecond
	c.Logger = nil
	c.HTTPClient.Transport = next
	return &retryablehttp.RoundTripper{Client: c}
}

// peerFailsafeHTTP is failsafe-go's HTTP round tripper with its HTTP retry
// policy (its defaults: two retries, Retry-After honoured).
func peerFailsafeHTTP(next http.RoundTripper) http.RoundTripper {
	return failsafehttp.NewRoundTripper(next, failsafehttp.NewRetryPolicyBuilder().Build())
}

// knownBreak is a rule a peer breaks, and a phrase of the failure that says why.
type knownBreak struct {
	rule conformance.Rule
	why  string
}

// The peers are measured, not endorsed: each breaks rules of the contract,
// and the test pins exactly which, and why, so that a release that fixes or
// breaks one is noticed.
func TestPeersContract(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mw         transport.Middleware
		knownBreak []knownBreak
	}{
		{"go-retryablehttp", peerRetryableHTTP, []knownBreak{
			// FromRequest keeps the caller's *http.Request and sets its Body
			// to a reader over the bytes it read.
			{conformance.RuleRequestUnmodified, "Body replaced"},
			// It reads the caller's body into a buffer and never closes it.
			{conformance.RuleRequestBodyClosed, "request body was never closed"},
			// Its default policy retries every connection error, so a POST
			// the server may have processed is sent again.
			{conformance.RuleNotResent, "is sent again"},
			// It drains at most 4 KiB (respReadLimit) of a response it
			// retries, so a proxy's 8 KiB error page costs the connection.
			{conformance.RuleDiscardedDrained, "after reading 4096 of its"},
			// Giving up, it drains the last answer and returns an error of
			// its own ("giving up after 5 attempt(s)") instead.
			{conformance.RuleAnswerKept, "the answer is lost"},
			// It sleeps the Retry-After of 1h until the context ends
			// instead of refusing a wait the deadline cannot fit.
			{conformance.RuleContextDeadline, "returned at its deadline"},
		}},
		{"failsafe-go", peerFailsafeHTTP, []knownBreak{
			// Each attempt sets Body on the caller's own request.
			{conformance.RuleRequestUnmodified, "Body replaced"},
			// It reads the caller's body with io.ReadAll and never closes it.
			{conformance.RuleRequestBodyClosed, "request body was never closed"},
			// Its HTTP retry policy retries any error, a reset connection
			// after a POST was written included.
			{conformance.RuleNotResent, "is sent again"},
			// Responses it retries are neither drained nor closed.
			{conformance.RuleDiscardedDrained, "was never closed"},
			// It wraps every body it returns in one that only reads, a
			// 101's too: a WebSocket through it has no connection.
			{conformance.RuleResponseIntact, "does not write"},
			// With its retries exceeded, it returns an error in place of
			// the last 503.
			{conformance.RuleAnswerKept, "the answer is lost"},
			// Its delay follows Retry-After (1h) until the context ends.
			{conformance.RuleContextDeadline, "returned at its deadline"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := conformance.CheckMiddleware(t, tc.mw)
			var want []conformance.Rule
			for _, k := range tc.knownBreak {
				want = append(want, k.rule)
				assert.Contains(t, strings.Join(rep.Result(k.rule).Failures, "\n"), k.why, "why %s fails", k.rule)
			}
			assert.Equal(t, want, rep.Failed(), "%s", rep)
		})
	}
}
