package together

import (
	"net/http"

	"github.com/steadyapi/steady/preset"
)

// Kinds of failure an [*APIError] matches with [errors.Is], so callers can
// branch without reading status codes:
//
//	if errors.Is(err, together.ErrRateLimited) { ... }
//
// They are every preset's ([preset.ErrRateLimited], ...): an error of the
// OpenAI preset matches them too.
var (
	ErrRateLimited   = preset.ErrRateLimited   // 429
	ErrOverloaded    = preset.ErrOverloaded    // 503, 529
	ErrModelNotFound = preset.ErrModelNotFound // 404 about a model
	ErrSpendingLimit = preset.ErrSpendingLimit // 402
	ErrUnauthorized  = preset.ErrUnauthorized  // 401, 403
)

// APIError is an error answer of the API, parsed from Together's error body
// {"error": {"message", "type", "param", "code"}} (and the other shapes
// OpenAI-compatible servers send): every preset's [preset.APIError].
type APIError = preset.APIError

// CheckResponse returns nil for a 2xx response and an [*APIError] for any
// other, its message starting "together:". It reads at most 64 KiB of the
// body to parse the error and then puts what it read back in front of the
// rest, so the caller can still read the whole body; the caller still
// closes it. A body that is not JSON gives its first 512 bytes as the
// message (an HTML page, its title), and so does a JSON body of another
// shape ({"detail": ...}), written compact. The bearer token of
// resp.Request, if the server echoed it, is removed from the message.
func CheckResponse(resp *http.Response) error { return preset.CheckResponse(resp, "together") }
