package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/steadyapi/steady/transport"
)

// ShouldRetry is the built-in choice of what is retried, the one [New]
// uses unless [WithShouldRetry] replaces it.
//
// A response with a status below 400 (a success, or a redirect the client
// did not follow) is never retried, whatever its x-should-retry says: a
// success is the work done, and billed, and sending it again would do it
// twice. The providers' Python and TypeScript SDKs read x-should-retry only
// on a failed answer too. A failed answer (400 or above) is retried when
// the server says x-should-retry: true, whatever its status, and otherwise
// when its status is 408, 409 (Together's SDKs retry it: a concurrency
// limit), 429, 500, 502, 503, 504 or 529 (Anthropic's overload);
// x-should-retry: false vetoes all of these. Other statuses, every other
// 4xx among them, are the caller's to handle.
//
// An error is retried when the connection failed: a dial failure (refused
// connections and failed lookups among them), a TLS handshake timeout,
// a connection the server closed while idle, a reset or aborted connection,
// a broken pipe, an EOF or unexpected EOF before the response. A cancelled
// or expired context is never retried, nor is any other error, such as a
// response header timeout.
//
// Not every connection failure is safe to retry, and the decorator checks
// that apart from ShouldRetry, whatever ShouldRetry says: an inference call
// is not idempotent, and one the server may have processed is billed again
// if it is sent again. A failure that shows the request was not written (a
// dial, a TLS handshake timeout, a connection closed while idle: net/http's own
// rule) is retried for every request; one that may have come after the
// server read the request (a reset, an EOF, a broken pipe) only for a
// request that is idempotent by net/http's rule (GET, HEAD, OPTIONS or
// TRACE, or an Idempotency-Key or X-Idempotency-Key header, which some
// SDKs send, though not openai-go v3 or anthropic-sdk-go v2), or for every
// request when
// [WithIdempotent] says so.
func ShouldRetry(resp *http.Response, err error) bool {
	return ShouldRetryInfo(resp, err, nil)
}

// ShouldRetryInfo is [ShouldRetry] for an outcome of the request info
// describes (nil: one not inspected): the same choice, with the answer's
// x-should-retry taken from info when a limiter under the decorator read
// the answer's headers already ([transport.Info.RetryVerdict]), so that
// the header is not looked up again. A rule set with
// [WithShouldRetryInfo] calls it to adjust the built-in choice.
func ShouldRetryInfo(resp *http.Response, err error, info *transport.Info) bool {
	if err != nil {
		return connectionFailure(err)
	}
	if resp == nil || resp.StatusCode < http.StatusBadRequest {
		return false
	}
	switch info.RetryVerdict(resp) {
	case transport.VerdictRetry:
		return true
	case transport.VerdictDontRetry:
		return false
	}
	return retryableStatus(resp.StatusCode)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, // 408
		http.StatusConflict,            // 409
		http.StatusTooManyRequests,     // 429
		http.StatusInternalServerError, // 500
		http.StatusBadGateway,          // 502
		http.StatusServiceUnavailable,  // 503
		http.StatusGatewayTimeout,      // 504
		transport.StatusOverloaded:     // 529, Anthropic's
		return true
	}
	return false
}

// connectionFailure reports whether err is a failure of the connection,
// before the response: one of the errors ShouldRetry retries.
func connectionFailure(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return notWritten(err) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// notWritten reports whether err shows that the server never read the
// request: the connection was never made (a dial failure, a refused
// connection, a failed lookup, a TLS handshake that timed out), or the
// server closed it while it was idle. net/http reports the last
// ("server closed idle connection") only when it saw the server's end
// close before this request was handed to the connection: whatever was
// written of the request reached a connection the server had closed.
// net/http itself sends such a request again only when it is idempotent;
// steady sends any request again, as it does after a failed dial.
func notWritten(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	// net/http's errors for these two have unexported types; their text
	// is the stable part of them.
	msg := err.Error()
	return strings.Contains(msg, "TLS handshake timeout") || strings.Contains(msg, "server closed idle connection")
}

// idempotent reports whether req may be sent twice by net/http's rule: an
// idempotent method, or a header that lets the server deduplicate it.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
}
