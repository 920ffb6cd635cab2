package together_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
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

	req, _ := http.NewRequest("GET", "https://api.together.xyz/v1/models", nil)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Empty(t, req.Header.Get("Authorization"), "the caller's request is not modified")

	req2, _ := http.NewRequest("GET", "https://api.together.xyz/v1/models", nil)
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
	resp, err := client.Get("https://api.together.xyz/v1/models")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "Bearer env-key", got)
}

// The key goes only to the API's origin: scheme, host and port.
func TestAPIKeyGoesOnlyToTheAPIsHost(t *testing.T) {
	var got = map[string]string{}
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		got[r.URL.String()] = r.Header.Get("Authorization")
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	rt := together.NewTransport(base, together.WithAPIKey("k-123"), together.WithBaseURL("https://proxy.test:8443/v1"))
	for _, u := range []string{
		"https://proxy.test:8443/v1/chat/completions", // the API: the key
		"https://PROXY.test:8443/v1/models",           // the same host in other case
		"https://proxy.test/v1/models",                // another port
		"http://proxy.test:8443/v1/models",            // another scheme
		"https://cdn.test/image.png",                  // an image URL the API returned
		"https://proxy.test.evil.test:8443/v1/models", // a host that only starts like it
	} {
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.Equal(t, map[string]string{
		"https://proxy.test:8443/v1/chat/completions": "Bearer k-123",
		"https://PROXY.test:8443/v1/models":           "Bearer k-123",
		"https://proxy.test/v1/models":                "",
		"http://proxy.test:8443/v1/models":            "",
		"https://cdn.test/image.png":                  "",
		"https://proxy.test.evil.test:8443/v1/models": "",
	}, got)
}

// A redirect from the API to another host or port does not get the key:
// net/http strips Authorization on a redirect to another host name (and
// keeps it for another port of the same one), and the preset neither adds
// it again nor lets it through.
func TestAPIKeyIsNotSentAfterARedirectToAnotherHost(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Auth-Seen", r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, "{}")
	}))
	defer other.Close()
	_, port, err := net.SplitHostPort(other.Listener.Addr().String())
	require.NoError(t, err)
	for _, target := range []string{other.URL, "http://localhost:" + port} { // another port; another host
		for _, code := range []int{301, 302, 303, 307, 308} {
			t.Run(strconv.Itoa(code)+" to "+target, func(t *testing.T) {
				redirectOnce(t, target, code)
			})
		}
	}
}

// A caller's own key (an SDK's, not the preset's) is taken off every hop
// of a redirect chain that left the API, not only the first: here the
// hops stay on one host name, on other ports, where net/http keeps
// Authorization.
func TestACallersKeyIsNotSentAlongARedirectChain(t *testing.T) {
	var mu sync.Mutex
	got := map[string]string{}
	seen := func(hop string, r *http.Request) {
		mu.Lock()
		got[hop] = r.Header.Get("Authorization")
		mu.Unlock()
	}
	third := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen("third", r)
		_, _ = io.WriteString(w, "{}")
	}))
	defer third.Close()
	second := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen("second", r)
		http.Redirect(w, r, third.URL+"/collect", http.StatusFound)
	}))
	defer second.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen("api", r)
		http.Redirect(w, r, second.URL+"/hop", http.StatusFound)
	}))
	defer api.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k-123"), together.WithBaseURL(api.URL+"/v1"))}
	req, err := http.NewRequest(http.MethodGet, api.URL+"/v1/models", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sdk-own-key")
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "{}", readBody(t, resp))
	assert.Equal(t, map[string]string{"api": "Bearer sdk-own-key", "second": "", "third": ""}, got)
}

func redirectOnce(t *testing.T, target string, code int) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k-123" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		http.Redirect(w, r, target+"/elsewhere", code)
	}))
	defer api.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k-123"), together.WithBaseURL(api.URL+"/v1"))}
	resp, err := client.Post(api.URL+"/v1/files", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode, "the redirect was followed")
	assert.Equal(t, "{}", readBody(t, resp))
	assert.Empty(t, resp.Header.Get("X-Auth-Seen"), "the other host got no key")
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// Requests for Together's own root go to the root of WithBaseURL, through
// whatever wraps the transport: EmbedAll and Models need no other setting.
func TestRequestsForTheDefaultRootGoToTheConfiguredOne(t *testing.T) {
	var got []string
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.URL.String()+" "+r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
	})
	preset := together.NewTransport(base, together.WithAPIKey("k"), together.WithBaseURL("http://sim.test:9/api/v1/"))
	wrapped := transport.Func(func(r *http.Request) (*http.Response, error) { return preset.RoundTrip(r) }) // the user's own middleware
	for _, u := range []string{together.DefaultBaseURL + "/embeddings", "https://api.together.xyz/v2/other"} {
		req, err := http.NewRequest("POST", u, strings.NewReader("{}"))
		require.NoError(t, err)
		resp, err := wrapped.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, u, req.URL.String(), "the caller's request is not modified")
	}
	assert.Equal(t, []string{
		"http://sim.test:9/api/v1/embeddings Bearer k",
		"https://api.together.xyz/v2/other ", // not under the API root: as it is, and no key
	}, got)
}

func TestNewClientDefaults(t *testing.T) {
	c := together.NewClient(together.WithAPIKey("x"))
	assert.Zero(t, c.Timeout, "deadlines come from contexts")
	assert.IsType(t, &together.Transport{}, c.Transport)
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
