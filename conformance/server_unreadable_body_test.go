package conformance_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// failingBody is a request body whose bytes stop with an error, as a
// client's connection cut mid-body does.
type failingBody struct{}

func (failingBody) Read([]byte) (int, error) { return 0, errors.New("connection cut") }

// A body the server cannot read is answered 400 in its dialect's error
// shape, as every other error is: Anthropic's {"type": "error", "error":
// {...}}, not Together's.
func TestAnUnreadableBodyIsRefusedInTheDialectsShape(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{Dialect: conformance.DialectAnthropic})
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/messages", failingBody{}))
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	var e struct {
		Type  string `json:"type"`
		Error struct {
			Type    string `json:"type"`
			Message string `json:"message"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e), rec.Body.String())
	assert.Equal(t, "error", e.Type, rec.Body.String())
	assert.Equal(t, "invalid_request_error", e.Error.Type, rec.Body.String())
	assert.NotEmpty(t, e.Error.Message)
}
