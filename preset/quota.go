package preset

import (
	"bytes"
	"net/http"
	"time"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// quotaPeek is how much of a 429's body the quota rule reads: error bodies
// are a few hundred bytes.
const quotaPeek = 4 << 10

// quotaRule is retry's rule ([retry.ShouldRetry]) with one more: a 429
// whose body says the account is out of quota (OpenAI's
// insufficient_quota, which no wait cures, and which comes with no
// x-should-retry: false) is not retried.
//
// Retry's own rule reads no body, because a body that is returned must
// reach the caller unread. This one reads the first bytes of a 429's body,
// and puts them back, only where the retry decorator is about to drain it
// to send the request again: retry asks its rule only while retries
// remain, and the rule reads nothing when the server's wait is over
// maxWait (retry's cap, as far as the rule knows it) or would not end
// before the deadline of the request the answer names, where retry
// returns the answer as it is. A quota answer is returned, its body
// whole, and [CheckResponse] names it with [ErrQuotaExceeded].
func quotaRule(maxWait time.Duration) func(*http.Response, error, *transport.Info) bool {
	return func(resp *http.Response, err error, info *transport.Info) bool {
		if !retry.ShouldRetryInfo(resp, err, info) {
			return false
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests ||
			resp.Body == nil || resp.Body == http.NoBody {
			return true
		}
		sig := transport.ParseSignals(resp.Header, time.Now())
		wait := max(sig.ServerWait(resp.StatusCode), 0)
		if wait > maxWait {
			return true
		}
		// Retry trims the jitter it adds to fit the deadline: it retries
		// whenever the wait itself fits, so the body is read then. An
		// answer that names no request (a base transport that does not
		// set it) has no deadline to fit: its body is read, and given
		// back whole if retry returns the answer.
		if resp.Request != nil {
			if ctx := resp.Request.Context(); ctx.Err() != nil || !transport.Fits(ctx, wait) {
				return true
			}
		}
		// The body is read for transport.DrainWait at most
		// (transport.PeekBody): a server that stalls it would otherwise
		// hold the request until its deadline, and one without a deadline
		// for good. A body closed then is judged by what came of it.
		peek, _ := transport.PeekBody(resp, quotaPeek)
		return !outOfQuota(resp.Header, peek)
	}
}

// outOfQuota reports whether a 429, whose header is h and whose body
// starts with body, says the account is out of quota (insufficient_quota),
// which no wait cures: no rate limit, and the limiters pass it by
// ([bucket.WithNotLimited]). A body still compressed is read uncompressed
// (see CheckResponse); one cut short is judged by what came of it.
func outOfQuota(h http.Header, body []byte) bool {
	return bytes.Contains(decoded(h, body, quotaPeek), []byte("insufficient_quota"))
}
