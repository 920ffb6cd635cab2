package conformance

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// Anthropic's errors name a type for each status its documentation
// lists: a 402 is a billing_error, a 504 a timeout_error, as its SDKs'
// ErrorType says; api_error is the 500's (and any other status's).
func TestAnthropicErrorTypesFollowItsStatuses(t *testing.T) {
	for status, want := range map[int]string{
		http.StatusBadRequest:            "invalid_request_error",
		http.StatusUnauthorized:          "authentication_error",
		http.StatusPaymentRequired:       "billing_error",
		http.StatusForbidden:             "permission_error",
		http.StatusNotFound:              "not_found_error",
		http.StatusRequestEntityTooLarge: "request_too_large",
		http.StatusTooManyRequests:       "rate_limit_error",
		http.StatusInternalServerError:   "api_error",
		http.StatusGatewayTimeout:        "timeout_error",
		529:                              "overloaded_error",
	} {
		assert.Equal(t, want, anthropicErrorType(status), "status %d", status)
	}
}
