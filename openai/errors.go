package openai

import (
	"net/http"

	"github.com/steadyapi/steady/preset"
)

// Kinds of failure an [*APIError] matches with [errors.Is]: every preset's
// ([preset.ErrRateLimited], ...).
var (
	// ErrQuotaExceeded: a 429 whose error is insufficient_quota (the
	// account is out of credit or over its spending limit). It is never
	// retried, and never matches ErrRateLimited: no wait cures it. Nor
	// does it pause or slow the model's limiter: every request of an
	// account out of quota is answered at once.
	ErrQuotaExceeded = preset.ErrQuotaExceeded
	ErrRateLimited   = preset.ErrRateLimited   // 429, but for quota
	ErrOverloaded    = preset.ErrOverloaded    // 503, 529
	ErrModelNotFound = preset.ErrModelNotFound // 404 about a model
	ErrUnauthorized  = preset.ErrUnauthorized  // 401, 403
)

// APIError is an error answer of the API, {"error": {"message", "type",
// "param", "code"}}: every preset's [preset.APIError].
type APIError = preset.APIError

// CheckResponse returns nil for a 2xx response and an [*APIError] for any
// other, its message starting "openai:" (see [preset.CheckResponse]); the
// body stays whole for the caller.
func CheckResponse(resp *http.Response) error { return preset.CheckResponse(resp, "openai") }
