package anthropic

import (
	"net/http"

	"github.com/steadyapi/steady/preset"
)

// Kinds of failure an [*APIError] matches with [errors.Is]: every preset's
// ([preset.ErrRateLimited], ...).
var (
	ErrOverloaded    = preset.ErrOverloaded    // 529 overloaded_error, 503
	ErrRateLimited   = preset.ErrRateLimited   // 429 rate_limit_error
	ErrModelNotFound = preset.ErrModelNotFound // 404 not_found_error about a model
	ErrUnauthorized  = preset.ErrUnauthorized  // 401 authentication_error, 403 permission_error
	// ErrQuotaExceeded: a 400 saying the credit balance is too low.
	ErrQuotaExceeded = preset.ErrQuotaExceeded
)

// APIError is an error answer of the API, {"type": "error", "error":
// {"type", "message"}}: every preset's [preset.APIError].
type APIError = preset.APIError

// CheckResponse returns nil for a 2xx response and an [*APIError] for any
// other, its message starting "anthropic:" (see [preset.CheckResponse]);
// the body stays whole for the caller.
func CheckResponse(resp *http.Response) error { return preset.CheckResponse(resp, "anthropic") }
