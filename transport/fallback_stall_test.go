package transport_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// stalledHead is the start of a 404's body whose server stalls before the
// rest: not enough to tell what the 404 is about.
const stalledHead = `{"type":"error","error":{"type":"not_`

// A 404 whose server sent its head and the start of its body, then
// stalls, does not hold the request until its deadline: Fallback reads the
// body to tell a missing model from any other 404 for DrainWait at most,
// as Drain does, and closes it then. What the 404 says is not known, so it
// is returned as it is, the model not left; the caller reads what came of
// the body, then an error.
func TestAStalled404DoesNotHoldTheRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stalled := newStalledBody()
		var sent atomic.Int32
		base := transport.Func(func(req *http.Request) (*http.Response, error) {
			sent.Add(1)
			_ = req.Body.Close()
			// As net/http does, the request's end closes its answer's body.
			context.AfterFunc(req.Context(), func() { _ = stalled.Close() })
			body := struct {
				io.Reader
				io.Closer
			}{io.MultiReader(strings.NewReader(stalledHead), stalled), stalled}
			return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: body, Request: req}, nil
		})
		rt := transport.Fallback(map[string][]string{"big": {"small"}})(base)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		resp, err := rt.RoundTrip(newChatRequest(t, chatRequest).WithContext(ctx))
		require.NoError(t, err)
		assert.Equal(t, transport.DrainWait, time.Since(start), "the body is waited for as long as Drain waits")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		assert.Equal(t, "big", resp.Header.Get(transport.ModelHeader))
		assert.Equal(t, int32(1), sent.Load(), "the model is not left on a 404 not read")
		synctest.Wait()
		assert.Equal(t, int32(1), stalled.closes.Load(), "the body was closed")
		b, err := io.ReadAll(resp.Body)
		assert.Error(t, err, "the body was closed")
		assert.Equal(t, stalledHead, string(b), "what came of the body is the caller's")
		require.NoError(t, resp.Body.Close())
	})
}

// The same over a real connection: a server that sends a 404's head and
// stalls its body does not hold the request until its deadline.
func TestAStalled404FromAServerDoesNotHoldTheRequest(t *testing.T) {
	srv := stallingServer(t, http.StatusNotFound, stalledHead)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rt := transport.Fallback(map[string][]string{"big": {"small"}})(srv.Client().Transport)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(chatRequest))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	assert.NoError(t, ctx.Err(), "Fallback returned before the request's end")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	assert.Error(t, err, "the body was closed")
	assert.Equal(t, stalledHead, string(b))
	_ = resp.Body.Close()
}
