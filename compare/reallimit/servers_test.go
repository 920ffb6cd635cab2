package reallimit_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/compare/reallimit"
)

// startNginx starts nginx for t, stopped when t ends.
func startNginx(t *testing.T) *reallimit.Server {
	t.Helper()
	s, err := reallimit.StartNginx("", t.TempDir())
	need(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// startExpress starts the express-rate-limit server for t, stopped when t
// ends.
func startExpress(t *testing.T) *reallimit.Server {
	t.Helper()
	s, err := reallimit.StartExpress("", reallimit.ExpressDir)
	need(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

// need applies the repository's rule to a server that did not start: a
// missing program or module skips the test, except in CI (CI set), whose
// script installs them, where it fails; a server that is there but broken
// always fails.
func need(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if reallimit.IsNotInstalled(err) && os.Getenv("CI") == "" {
		t.Skipf("skipped: %v", err)
	}
	t.Fatal(err)
}

// burst sends n requests at once with key to the chat completions of
// srv under prefix and returns the statuses
// of their answers, the headers of one 200 and one 429, and how long
// sending them took.
func burst(t *testing.T, srv *reallimit.Server, prefix, key string, n int) (statuses map[int]int, ok, refused http.Header, took time.Duration) {
	t.Helper()
	url := srv.URL + prefix + "/chat/completions"
	base := &http.Transport{MaxIdleConnsPerHost: n}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: base, Timeout: 10 * time.Second}
	// Open the connections first, so that the burst is not spread by
	// handshakes.
	var warm sync.WaitGroup
	for range min(n, 16) {
		warm.Go(func() {
			if resp, err := client.Get(srv.URL + "/ready"); err == nil {
				resp.Body.Close()
			}
		})
	}
	warm.Wait()

	statuses = map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Go(func() {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, strings.NewReader(reallimit.ChatBody))
			if !assert.NoError(t, err) {
				return
			}
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := client.Do(req)
			if !assert.NoError(t, err) {
				return
			}
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			switch resp.StatusCode {
			case http.StatusOK:
				ok = resp.Header
			case http.StatusTooManyRequests:
				refused = resp.Header
			}
		})
	}
	wg.Wait()
	return statuses, ok, refused, time.Since(start)
}

// TestServersLimit checks the yardstick: each server admits a burst as its
// configuration says, refuses the rest with 429, and announces its limit
// in the headers it should. A server that does not limit (nginx answering
// with `return` does not) would make every client look ideal.
func TestServersLimit(t *testing.T) {
	nginx, express := startNginx(t), startExpress(t)

	nginxCases := []struct {
		prefix string
		limit  reallimit.LeakyBucket
	}{
		{reallimit.NginxBurstPrefix, reallimit.NginxBurst},
		{reallimit.NginxNoBurstPrefix, reallimit.NginxNoBurst},
	}
	for _, c := range nginxCases {
		t.Run("nginx"+c.prefix, func(t *testing.T) {
			n := c.limit.Burst + 6
			statuses, ok, refused, took := burst(t, nginx, c.prefix, "probe"+c.prefix, n)
			// The burst is admitted at once; the rate admits one more per
			// 1/rate of the time the burst took to send.
			most := c.limit.Burst + 1 + int(took.Seconds()*c.limit.PerSecond)
			assert.GreaterOrEqual(t, statuses[http.StatusOK], c.limit.Burst+1, "statuses %v", statuses)
			assert.LessOrEqual(t, statuses[http.StatusOK], most, "statuses %v in %v", statuses, took)
			assert.Equal(t, n, statuses[http.StatusOK]+statuses[http.StatusTooManyRequests], "statuses %v", statuses)
			require.NotNil(t, ok)
			require.NotNil(t, refused, "statuses %v", statuses)
			assert.JSONEq(t, reallimit.Completion, readBody(t, nginx.URL+c.prefix+"/chat/completions", "fresh"+c.prefix))
			for _, h := range []http.Header{ok, refused} {
				for k := range h {
					assert.NotContains(t, strings.ToLower(k), "ratelimit", "nginx sends no rate headers")
					assert.NotEqual(t, "Retry-After", k, "nginx sends no Retry-After")
				}
			}
		})
	}

	q := reallimit.ExpressLimit.Quota
	expressCases := []struct {
		prefix string
		check  func(t *testing.T, ok, refused http.Header)
	}{
		{reallimit.ExpressDraft7Prefix, func(t *testing.T, ok, refused http.Header) {
			assert.Regexp(t, `^limit=100, remaining=\d+, reset=\d+$`, ok.Get("RateLimit"))
			assert.Equal(t, "limit=100, remaining=0, reset=10", refused.Get("RateLimit"))
			assert.Equal(t, "100;w=10", ok.Get("RateLimit-Policy"))
			assert.Empty(t, ok.Get("X-RateLimit-Limit"))
		}},
		{reallimit.ExpressDraft8Prefix, func(t *testing.T, ok, refused http.Header) {
			assert.Regexp(t, `^"100-in-10sec"; r=\d+; t=\d+$`, ok.Get("RateLimit"))
			assert.Equal(t, `"100-in-10sec"; r=0; t=10`, refused.Get("RateLimit"))
			assert.Regexp(t, `^"100-in-10sec"; q=100; w=10; pk=:[A-Za-z0-9+/=]+:$`, ok.Get("RateLimit-Policy"))
			assert.Empty(t, ok.Get("X-RateLimit-Limit"))
		}},
		{reallimit.ExpressLegacyPrefix, func(t *testing.T, ok, refused http.Header) {
			assert.Equal(t, "100", ok.Get("X-RateLimit-Limit"))
			assert.Regexp(t, `^\d+$`, ok.Get("X-RateLimit-Remaining"))
			assert.Equal(t, "0", refused.Get("X-RateLimit-Remaining"))
			reset, err := time.Parse(http.TimeFormat, refused.Get("Date"))
			require.NoError(t, err)
			assert.Regexp(t, `^\d{10}$`, refused.Get("X-RateLimit-Reset"), "a Unix time, not a delay (Date %v)", reset)
			assert.Empty(t, ok.Get("RateLimit"))
		}},
	}
	for _, c := range expressCases {
		t.Run("express"+c.prefix, func(t *testing.T) {
			n := q + 5
			statuses, ok, refused, took := burst(t, express, c.prefix, "probe"+c.prefix, n)
			require.Less(t, took, reallimit.ExpressLimit.Window, "the burst must fit in one window")
			assert.Equal(t, map[int]int{http.StatusOK: q, http.StatusTooManyRequests: n - q}, statuses)
			require.NotNil(t, ok)
			require.NotNil(t, refused)
			assert.Equal(t, "10", refused.Get("Retry-After"))
			assert.JSONEq(t, reallimit.Completion, readBody(t, express.URL+c.prefix+"/chat/completions", "fresh"+c.prefix))
			c.check(t, ok, refused)
		})
	}
}

// readBody returns the body of one chat completion sent with key.
func readBody(t *testing.T, url, key string) string {
	t.Helper()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(reallimit.ChatBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Transport: base, Timeout: 10 * time.Second}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b := new(strings.Builder)
	_, err = io.Copy(b, resp.Body)
	require.NoError(t, err)
	return b.String()
}
