package breaker

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func answer(status int) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return &http.Response{StatusCode: status, Body: http.NoBody}, nil
	})
}

func request(t *testing.T, model string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`"}`))
	require.NoError(t, err)
	return req
}

func roundTrip(t *testing.T, rt http.RoundTripper, model string) error {
	t.Helper()
	resp, err := rt.RoundTrip(request(t, model))
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return err
}

func keys(rt http.RoundTripper) int {
	b := rt.(*roundTripper)
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

func TestIdleBreakersAreDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New(Settings{})(answer(200))
		for i := range 100 {
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("model-%d", i)))
		}
		require.Equal(t, 100, keys(rt))
		time.Sleep(DefaultIdleTTL / 2)
		require.NoError(t, roundTrip(t, rt, "model-0")) // keeps model-0 alive
		time.Sleep(DefaultIdleTTL / 2)
		require.NoError(t, roundTrip(t, rt, "model-0")) // the sweep runs on access
		assert.Equal(t, 1, keys(rt), "only the breaker used within IdleTTL is left")
	})
}

func TestOpenBreakersOutliveIdleness(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New(Settings{Timeout: time.Hour, IdleTTL: time.Minute})(answer(503))
		for range 5 {
			require.NoError(t, roundTrip(t, rt, "down"))
		}
		time.Sleep(2 * time.Minute)
		require.ErrorIs(t, roundTrip(t, rt, "down"), ErrOpen, "an open breaker is not forgotten")
	})
}

func TestMaxKeysBoundsTheMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := New(Settings{MaxKeys: 10})(answer(200))
		for i := range 1000 {
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("model-%d", i)))
			require.LessOrEqual(t, keys(rt), 10)
			time.Sleep(time.Millisecond)
		}
		b := rt.(*roundTripper)
		b.mu.Lock()
		defer b.mu.Unlock()
		assert.Contains(t, b.entries, "api.together.xyz model-999", "the least recently used give way")
		assert.NotContains(t, b.entries, "api.together.xyz model-0")
	})
}
