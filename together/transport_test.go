package together_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

func chatBody(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}],"max_tokens":16}`
}

func post(t *testing.T, ctx context.Context, client *http.Client, path, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://sim.test/v1"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	require.NoError(t, err)
	return resp
}

func TestAPIKeyIsAddedWithoutTouchingTheRequest(t *testing.T) {
	var got []string
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	rt := together.NewTransport(base, together.WithAPIKey("k-123"))

	req, _ := http.NewRequest("GET", "http://sim.test/v1/models", nil)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, req.Header.Get("Authorization"), "the caller's request is not modified")

	req2, _ := http.NewRequest("GET", "http://sim.test/v1/models", nil)
	req2.Header.Set("Authorization", "Bearer own")
	resp, err = rt.RoundTrip(req2)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []string{"Bearer k-123", "Bearer own"}, got)
}

func TestAPIKeyFromEnvironment(t *testing.T) {
	t.Setenv("TOGETHER_API_KEY", "env-key")
	var got string
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Get("Authorization")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	client := &http.Client{Transport: together.NewTransport(base)}
	resp, err := client.Get("http://sim.test/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "Bearer env-key", got)
}

func TestNewClientDefaults(t *testing.T) {
	c := together.NewClient(together.WithAPIKey("x"))
	assert.Zero(t, c.Timeout, "deadlines come from contexts")
	assert.Equal(t, together.DefaultBaseURL, together.BaseURL(c))
	assert.Equal(t, together.DefaultBaseURL, together.BaseURL(http.DefaultClient))
	assert.Equal(t, "http://h/v1", together.BaseURL(together.NewClient(together.WithBaseURL("http://h/v1/"))))
}

func TestChatThroughThePreset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{
			Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 600}},
		})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				resp := post(t, context.Background(), client, "/chat/completions", chatBody("meta-llama/Llama-3.3-70B-Instruct-Turbo"))
				defer resp.Body.Close()
				assert.NoError(t, together.CheckResponse(resp))
				_, _ = io.Copy(io.Discard, resp.Body)
			})
		}
		wg.Wait()
		st := srv.Stats()
		assert.Equal(t, 50, st.OK)
		assert.LessOrEqual(t, st.TooMany, 1)
		for _, a := range srv.Arrivals() {
			assert.Equal(t, "test-key", a.Key)
		}
	})
}

func TestBatchOverTheLimitIsRefusedBeforeSending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		lines := strings.Repeat(`{\"custom_id\":\"x\",\"body\":{}}\n`, 101)
		req, _ := http.NewRequest("POST", "http://sim.test/v1/batches", strings.NewReader(`{"input":"`+lines+`"}`))
		_, err := client.Do(req)
		var tooLarge *together.BatchTooLargeError
		require.ErrorAs(t, err, &tooLarge)
		assert.Equal(t, 101, tooLarge.Requests)
		assert.Zero(t, srv.Stats().Arrivals, "nothing was sent")

		ok := strings.Repeat(`{\"custom_id\":\"x\",\"body\":{}}\n`, 100)
		resp := post(t, context.Background(), client, "/batches", `{"input":"`+ok+`"}`)
		defer resp.Body.Close()
		assert.Equal(t, 1, srv.Stats().Arrivals)
		assert.Less(t, resp.StatusCode, 300)
	})
}

func TestDeadlineShorterThanTheServersWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A key of 6 requests a minute: after the first, the next slot is 10 s away.
		_, client := simClient(conformance.Config{
			Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 6}},
		}, together.WithRate(together.RouteChat, 6))
		resp := post(t, context.Background(), client, "/chat/completions", chatBody("meta-llama/Llama-3.3-70B-Instruct-Turbo"))
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode)

		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://sim.test/v1/chat/completions", strings.NewReader(chatBody("meta-llama/Llama-3.3-70B-Instruct-Turbo")))
		_, err := client.Do(req)
		assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
		assert.Zero(t, time.Since(start), "refused at once, not after waiting for the deadline")
	})
}
