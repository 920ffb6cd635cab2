package bucket_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// conn is the body of a 101 answer, as net/http hands it: the connection
// itself, which the caller writes to as well as reads.
type conn struct {
	bytes.Buffer
	closed int
}

func (c *conn) Close() error { c.closed++; return nil }

// An upgraded connection (a WebSocket's 101) passes a token limiter as it
// came: its body is the connection, which the caller writes to, and which
// reports no usage. A wrapper that only reads would leave the caller (a
// WebSocket client, httputil.ReverseProxy) without a connection.
func TestKeyedKeepsAnUpgradedConnectionWritable(t *testing.T) {
	c := &conn{}
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusSwitchingProtocols, Header: http.Header{"Upgrade": {"websocket"}},
			Body: c, Request: req}, nil
	})
	// A token limit of a known rate: the limiter is open from the start.
	rt := bucket.Keyed(bucket.PerMinute(600), bucket.WithTokenLimits(bucket.TokenLimit{Rate: bucket.PerMinute(30000)}))(base)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://api.example.com/v1/realtime?model=m", nil)
	require.NoError(t, err)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	require.True(t, ok, "the body of a 101 is %T, not the connection", resp.Body)
	_, err = io.WriteString(rwc, "hello")
	require.NoError(t, err)
	assert.Equal(t, "hello", c.String(), "written to the connection")
	require.NoError(t, rwc.Close())
	assert.Equal(t, 1, c.closed)
}
