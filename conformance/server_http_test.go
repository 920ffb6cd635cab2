package conformance_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// srvHTTP serves srv over loopback and returns a client for it, both shut
// down when the test ends.
func srvHTTP(t *testing.T, srv *conformance.Server) (base string, client *http.Client) {
	t.Helper()
	ts := httptest.NewServer(srv)
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
	})
	return ts.URL, &http.Client{Transport: tr}
}

func srvPost(ctx context.Context, t *testing.T, client *http.Client, url, body string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

func TestServerHTTP(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{
		// One request a minute: the second of a quick pair is refused
		// whatever the wall clock does meanwhile.
		Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 1}},
		Headers: conformance.HeaderRetryAfter,
	})
	base, client := srvHTTP(t, srv)
	for i := range 2 {
		resp, err := srvPost(context.Background(), t, client, base+"/v1/chat/completions", srvChatBody)
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		if i == 0 {
			require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
			assert.Contains(t, string(b), `"model":"`+srvChatModel+`"`)
			continue
		}
		require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.NotEmpty(t, resp.Header.Get("X-Ratelimit-Reset"))
		assert.Equal(t, "60", resp.Header.Get("Retry-After"))
		assert.Equal(t, conformance.ErrorRequestLimited, srvErrorType(t, string(b)))
	}
	resp, err := client.Get(base + "/v1/models")
	require.NoError(t, err)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(b), srvEmbedModel)
	assert.Equal(t, conformance.Stats{Arrivals: 3, OK: 2, TooMany: 1}, srv.Stats())
}

func TestServerHTTPStream(t *testing.T) {
	base, client := srvHTTP(t, conformance.NewServer(conformance.Config{}))
	resp, err := srvPost(context.Background(), t, client, base+"/v1/chat/completions", srvStreamBody)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			events = append(events, data)
		}
	}
	require.NoError(t, sc.Err())
	require.Greater(t, len(events), 3)
	assert.Equal(t, "[DONE]", events[len(events)-1])
}

// Each event is flushed as it is made: the first arrives while the server
// still waits an hour before the second.
func TestServerHTTPStreamFlushed(t *testing.T) {
	base, client := srvHTTP(t, conformance.NewServer(conformance.Config{StreamInterval: time.Hour}))
	resp, err := srvPost(context.Background(), t, client, base+"/v1/chat/completions", srvStreamBody)
	require.NoError(t, err)
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(line, "data: {"), line)
	blank, err := rd.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "\n", blank, "a whole event")
	require.NoError(t, resp.Body.Close(), "closing early ends the handler's wait")
}

func TestServerHTTPFaults(t *testing.T) {
	tests := []struct {
		kind  conformance.FaultKind
		check func(t *testing.T, resp *http.Response, err error)
	}{
		{conformance.FaultReset, func(t *testing.T, resp *http.Response, err error) {
			assert.Error(t, err, "the connection closed without an answer")
		}},
		{conformance.FaultTruncate, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			_, err = io.ReadAll(resp.Body)
			assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		}},
		{conformance.FaultStatus, func(t *testing.T, resp *http.Response, err error) {
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		}},
		{conformance.FaultHang, func(t *testing.T, resp *http.Response, err error) {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		}},
	}
	for _, tt := range tests {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: tt.kind}}})
		base, client := srvHTTP(t, srv)
		timeout := time.Minute
		if tt.kind == conformance.FaultHang { // the only way out of a hang
			timeout = 100 * time.Millisecond
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		resp, err := srvPost(ctx, t, client, base+"/v1/chat/completions", srvChatBody)
		tt.check(t, resp, err)
		cancel()
		assert.Equal(t, 1, srv.Stats().Arrivals)
	}
}

// bytesAllocated is what f allocates on the heap, in bytes.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A Content-Length is what the client says, not what it sends: a request
// that announces 32 MiB and sends a few bytes costs the server what it
// sent, not 32 MiB (sixty such connections held 1.6 GB of a provider).
func TestServerBodyLyingContentLength(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{})
	lying := func() *http.Request {
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(srvChatBody))
		req.ContentLength = 32 << 20
		return req
	}
	var status int
	n := bytesAllocated(func() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, lying())
		status = w.Code
	})
	assert.Equal(t, http.StatusOK, status)
	assert.Less(t, n, uint64(1<<20), "bytes allocated to serve a request of %d bytes", len(srvChatBody))

	n = bytesAllocated(func() {
		resp, err := srv.RoundTrip(lying())
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	})
	assert.Less(t, n, uint64(1<<20), "bytes allocated to answer a request of %d bytes in memory", len(srvChatBody))
}
