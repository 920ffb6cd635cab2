package transport_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/transport"
)

// idleCloser is a base transport that counts CloseIdleConnections calls.
type idleCloser struct {
	http.RoundTripper
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

// http.Client.CloseIdleConnections reaches the base transport through
// Route and Fallback, and a nil next means http.DefaultTransport.
func TestCloseIdleConnectionsReachesTheBase(t *testing.T) {
	base := &idleCloser{}
	rt := transport.Chain(base,
		transport.Route(nil, map[string]transport.Middleware{transport.EndpointChat: transport.Fallback(nil)}),
		transport.Fallback(map[string][]string{"a": {"b"}}),
	)
	(&http.Client{Transport: rt}).CloseIdleConnections()
	assert.Positive(t, base.closed)

	assert.NotNil(t, transport.Fallback(nil)(nil), "a nil next is http.DefaultTransport")
	transport.CloseIdleConnections(transport.Func(http.DefaultTransport.RoundTrip)) // no method: nothing to do
}
