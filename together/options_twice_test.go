package together_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// The same WithFallback given twice (a shared options slice and a
// per-call one, say) must not send the request to the alternate twice.
func TestWithFallbackGivenTwiceSendsToTheAlternateOnce(t *testing.T) {
	var mu sync.Mutex
	arrivals := map[string]int{}
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		m, _, _ := transport.RequestModel(req, -1)
		mu.Lock()
		arrivals[m]++
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	rt := together.NewTransport(base, together.WithAPIKey("k"), together.WithMaxRetries(0),
		together.WithFallback("big", "small"), together.WithFallback("big", "small"))
	req, err := http.NewRequest(http.MethodPost, together.DefaultBaseURL+"/chat/completions", strings.NewReader(`{"model":"big","messages":[]}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, map[string]int{"big": 1, "small": 1}, arrivals)
}
