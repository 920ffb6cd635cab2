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

// ShouldRetry is the built-in choice of what is retried, the one a zero
// [Policy] uses.
//
// A response is retried when the server says x-should-retry: true, whatever
// its status, and otherwise when its status is 408, 409 (Together's SDKs
// retry it: a concurrency limit), 429, 500, 502, 503, 504 or 529
// (Anthropic's overload); x-should-retry: false vetoes all of these. Other
// statuses, every other 4xx among them, are the caller's to handle.
//
// An error is retried when it shows the request never reached the server's
// application: a dial failure (*net.OpError with Op "dial", refused
// connections and failed lookups among them), a connection reset or aborted,
// a broken pipe, an EOF or unexpected EOF before the response, or a TLS
// handshake timeout. Errors after the request may have been processed, such
// as a response header timeout, are not retried, since most API calls are
// not idempotent. A cancelled or expired context is never retried.
func ShouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return retryableError(err)
	}
	if resp == nil {
		return false
	}
	switch transport.RetryVerdict(resp.Header) {
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

func retryableError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	// net/http's TLS handshake timeout has an unexported type; its text is
	// the stable part of it.
	return strings.Contains(err.Error(), "TLS handshake timeout")
}
