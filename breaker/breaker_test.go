package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// fakeServer answers each model with the status set for it (200 by
// default), and counts the requests that reached it.
type fakeServer struct {
	mu         sync.Mutex
	status     map[string]int
	err        map[string]error
	retryAfter string
	calls      map[string]int
	latency    time.Duration
}

func newFakeServer() *fakeServer {
	return &fakeServer{status: map[string]int{}, err: map[string]error{}, calls: map[string]int{}}
}

func (s *fakeServer) set(model string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status[model] = status
}

func (s *fakeServer) count(model string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[model]
}

func (s *fakeServer) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	model, _ := transport.FindModel(body)
	s.mu.Lock()
	s.calls[model]++
	status, ferr, ra, latency := s.status[model], s.err[model], s.retryAfter, s.latency
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if ferr != nil {
		return nil, ferr
	}
	if status == 0 {
		status = http.StatusOK
	}
	h := http.Header{}
	if ra != "" && status >= 500 {
		h.Set("Retry-After", ra)
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(`{}`)), Request: req}, nil
}

func chat(t testing.TB, model string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer sk-secret-key")
	return req
}

// send sends one request and closes what comes back, returning the status
// or the error.
func send(t testing.TB, rt http.RoundTripper, req *http.Request) (int, error) {
	t.Helper()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		require.Nil(t, resp, "a response or an error, not both")
		return 0, err
	}
	transport.Drain(resp)
	return resp.StatusCode, nil
}

func TestWhatCountsAsFailure(t *testing.T) {
	tests := []struct {
		name   string
		status int
		err    error
		trips  bool
	}{
		{"500", 500, nil, true},
		{"502", 502, nil, true},
		{"503", 503, nil, true},
		{"504", 504, nil, true},
		{"529", 529, nil, true},
		{"transport error", 0, errors.New("connection reset by peer"), true},
		{"200", 200, nil, false},
		{"400", 400, nil, false},
		{"401", 401, nil, false},
		{"404", 404, nil, false},
		{"429", 429, nil, false},
		{"501", 501, nil, false},
		{"canceled error", 0, context.Canceled, false},
		{"deadline error", 0, transport.ErrDeadline, false},
		{"inner breaker open", 0, fmt.Errorf("inner: %w", transport.ErrModelUnavailable), false},
		{"refused before sending", 0, transport.NotSent(errors.New("queue full")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				srv.set("m", tt.status)
				srv.err["m"] = tt.err
				rt := breaker.New()(srv)
				for range 30 {
					_, _ = send(t, rt, chat(t, "m"))
				}
				if tt.trips {
					assert.Equal(t, breaker.DefaultConsecutiveFailures, srv.count("m"), "open after five failures: the rest failed fast")
				} else {
					assert.Equal(t, 30, srv.count("m"), "never opened")
				}
			})
		})
	}
}

func TestCancelledContextIsExcluded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.latency = time.Second
		srv.set("m", 503)
		rt := breaker.New()(srv)
		for range 10 { // the caller gives up before the model answers
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			_, err := send(t, rt, chat(t, "m").WithContext(ctx))
			cancel()
			require.ErrorIs(t, err, context.DeadlineExceeded)
		}
		assert.Equal(t, 10, srv.count("m"), "timeouts and cancellations do not open the breaker")
		for range 10 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		assert.Equal(t, 15, srv.count("m"), "five real failures do")
	})
}

func TestOpenFailsFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("meta-llama/Llama-3.3-70B-Instruct-Turbo", 503)
		rt := breaker.New()(srv)
		for range 5 {
			status, err := send(t, rt, chat(t, "meta-llama/Llama-3.3-70B-Instruct-Turbo"))
			require.NoError(t, err, "a failing answer is returned as it is")
			require.Equal(t, 503, status)
		}
		body := &trackedBody{Reader: strings.NewReader(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo"}`)}
		req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", body)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sk-secret-key")
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		assert.Zero(t, time.Since(start), "no wait at all")
		require.Nil(t, resp)
		require.Error(t, err)
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.ErrorIs(t, err, transport.ErrModelUnavailable)
		assert.ErrorIs(t, err, gobreaker.ErrOpenState)
		var open *breaker.OpenError
		require.ErrorAs(t, err, &open)
		assert.Equal(t, "api.together.xyz meta-llama/Llama-3.3-70B-Instruct-Turbo", open.Key)
		assert.Equal(t, breaker.DefaultTimeout, open.Wait)
		assert.Contains(t, err.Error(), "meta-llama/Llama-3.3-70B-Instruct-Turbo")
		assert.NotContains(t, err.Error(), "secret")
		assert.Equal(t, 5, srv.count("meta-llama/Llama-3.3-70B-Instruct-Turbo"), "the request was not sent")
		assert.True(t, body.closed, "the request body is closed")

		status, err := send(t, rt, chat(t, "other"))
		require.NoError(t, err)
		assert.Equal(t, 200, status, "other models have their own breaker")
	})
}

type trackedBody struct {
	io.Reader
	closed bool
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

func TestOpenPeriod(t *testing.T) {
	tests := []struct {
		name       string
		settings   []breaker.Option
		retryAfter string
		open       time.Duration
	}{
		{"default timeout", []breaker.Option{}, "", 30 * time.Second},
		{"configured timeout", []breaker.Option{breaker.WithTimeout(90 * time.Second)}, "", 90 * time.Second},
		{"server's Retry-After", []breaker.Option{}, "7", 7 * time.Second},
		{"Retry-After longer than the timeout", []breaker.Option{}, "120", 2 * time.Minute},
		{"Retry-After capped", []breaker.Option{}, "3600", breaker.DefaultMaxRetryAfter},
		{"Retry-After 0 waits a second", []breaker.Option{}, "0", time.Second},
		{"Retry-After date", []breaker.Option{}, "Sat, 01 Jan 2000 00:00:12 GMT", 12 * time.Second},
		{"Retry-After capped under half a second", []breaker.Option{breaker.WithMaxRetryAfter(100 * time.Millisecond)}, "5", 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				srv.set("m", 503)
				srv.retryAfter = tt.retryAfter
				rt := breaker.New(tt.settings...)(srv)
				for range 5 {
					_, _ = send(t, rt, chat(t, "m"))
				}
				require.Equal(t, 5, srv.count("m"))
				time.Sleep(tt.open - time.Millisecond)
				_, err := send(t, rt, chat(t, "m"))
				require.ErrorIs(t, err, breaker.ErrOpen, "still open just before the period ends")
				time.Sleep(time.Millisecond)
				_, err = send(t, rt, chat(t, "m"))
				require.NoError(t, err, "a probe goes through when it ends")
				assert.Equal(t, 6, srv.count("m"))
			})
		})
	}
}

// The shortest open period, a nanosecond, is that: probes go through a
// millisecond later, not after gobreaker's own default of a minute.
func TestOpenPeriodOfANanosecond(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("m", 503)
		rt := breaker.New(breaker.WithTimeout(time.Nanosecond))(srv)
		for range 5 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		require.Equal(t, 5, srv.count("m"))
		time.Sleep(time.Millisecond)
		_, err := send(t, rt, chat(t, "m"))
		require.NoError(t, err, "a probe goes through")
		assert.Equal(t, 6, srv.count("m"))
	})
}

// The bubble starts at 2000-01-01 00:00:00 UTC, which the Retry-After date
// of TestOpenPeriod relies on.
func TestBubbleEpoch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		require.Equal(t, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().UTC())
	})
}

func TestHalfOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.latency = time.Second
		srv.set("m", 503)
		type change struct{ key, from, to string }
		var mu sync.Mutex
		var changes []change
		rt := breaker.New(breaker.WithEvents(func(e transport.Event) {
			mu.Lock()
			changes = append(changes, change{e.Key, e.From, e.To})
			mu.Unlock()
		}))(srv)
		for range 5 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		time.Sleep(breaker.DefaultTimeout)

		// Half-open, the model still down: the first failing probe reopens it.
		var wg sync.WaitGroup
		results := make([]error, 5)
		for i := range results {
			wg.Go(func() { _, results[i] = send(t, rt, chat(t, "m")) })
			time.Sleep(time.Millisecond)
		}
		wg.Wait()
		assert.Equal(t, 5+breaker.DefaultHalfOpenProbes, srv.count("m"), "only the probes reach the model")
		for _, err := range results[breaker.DefaultHalfOpenProbes:] {
			require.ErrorIs(t, err, breaker.ErrOpen)
			assert.ErrorIs(t, err, gobreaker.ErrTooManyRequests)
		}
		_, err := send(t, rt, chat(t, "m"))
		require.ErrorIs(t, err, breaker.ErrOpen, "a failed probe opens it again")

		// The model recovers: all three probes succeed and it closes.
		srv.set("m", 200)
		time.Sleep(breaker.DefaultTimeout)
		for range breaker.DefaultHalfOpenProbes {
			_, err := send(t, rt, chat(t, "m"))
			require.NoError(t, err)
		}
		for range 10 {
			_, err := send(t, rt, chat(t, "m"))
			require.NoError(t, err)
		}
		const key = "api.together.xyz m"
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []change{
			{key, "closed", "open"},
			{key, "open", "half-open"},
			{key, "half-open", "open"},
			{key, "open", "half-open"},
			{key, "half-open", "closed"},
		}, changes)
	})
}

func TestFailureRatio(t *testing.T) {
	tests := []struct {
		name          string
		failEvery     int // every n-th request fails
		requests      int
		wantOpenAfter int // requests that reached the model; 0: never opened
	}{
		{"half fail: opens at 20", 2, 40, 20},
		{"a third fail: stays closed", 3, 60, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := newFakeServer()
				rt := breaker.New()(srv)
				for i := 1; i <= tt.requests; i++ {
					status := 200
					if i%tt.failEvery == 0 {
						status = 503
					}
					srv.set("m", status)
					_, _ = send(t, rt, chat(t, "m"))
					time.Sleep(100 * time.Millisecond)
				}
				if tt.wantOpenAfter > 0 {
					assert.Equal(t, tt.wantOpenAfter, srv.count("m"))
				} else {
					assert.Equal(t, tt.requests, srv.count("m"))
				}
			})
		})
	}
}

func TestSamplingWindowForgets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("m", 503)
		rt := breaker.New()(srv)
		for range 4 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		time.Sleep(breaker.DefaultSamplingWindow + time.Second)
		for range 4 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		assert.Equal(t, 8, srv.count("m"), "four failures 30 s apart are not five in a row")
	})
}

func TestCustomKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("a", 503)
		var keys []string
		rt := breaker.New(breaker.WithKey(func(req *http.Request, model string) string { return "all" }),
			breaker.WithEvents(func(e transport.Event) { keys = append(keys, e.Key) }))(srv)
		for range 5 {
			_, _ = send(t, rt, chat(t, "a"))
		}
		_, err := send(t, rt, chat(t, "b"))
		require.ErrorIs(t, err, breaker.ErrOpen, "one key for every model: b shares a's breaker")
		assert.Equal(t, []string{"all"}, keys)
	})
}

func TestPerHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.set("m", 503)
		rt := breaker.New()(srv)
		for range 5 {
			_, _ = send(t, rt, chat(t, "m"))
		}
		req := chat(t, "m")
		req.URL.Host = "api.other.example"
		_, err := send(t, rt, req)
		require.NoError(t, err, "the same model on another host has its own breaker")
	})
}

// The breaker counts answers; it returns them as they are, unread.
func TestAnswersReturnedUntouched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &trackedBody{Reader: strings.NewReader("overloaded")}
		want := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"3"}}, Body: body}
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			_ = req.Body.Close()
			return want, nil
		})
		resp, err := breaker.New()(inner).RoundTrip(chat(t, "m"))
		require.NoError(t, err)
		assert.Same(t, want, resp)
		assert.False(t, body.closed)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, "overloaded", string(b))
	})
}

// A request without GetBody reaches the server with its whole body, and
// requests without a body at all share one breaker per host.
func TestBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got []byte
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			if req.Body != nil {
				got, _ = io.ReadAll(req.Body)
				_ = req.Body.Close()
			}
			return &http.Response{StatusCode: 503, Body: http.NoBody}, nil
		})
		rt := breaker.New()(inner)
		const body = `{"model":"m","messages":[]}`
		req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", io.NopCloser(strings.NewReader(body)))
		require.NoError(t, err)
		_, err = send(t, rt, req)
		require.NoError(t, err)
		assert.Equal(t, body, string(got))

		for range 5 {
			get, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
			require.NoError(t, err)
			_, _ = send(t, rt, get)
		}
		get, err := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
		require.NoError(t, err)
		_, err = send(t, rt, get)
		var open *breaker.OpenError
		require.ErrorAs(t, err, &open)
		assert.Equal(t, "api.together.xyz ", open.Key)
		_, err = send(t, rt, chat(t, "m"))
		assert.NoError(t, err, "the model's own breaker is another")
	})
}

func TestConcurrent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newFakeServer()
		srv.latency = 10 * time.Millisecond
		rt := breaker.New()(srv)
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 100 {
					model := fmt.Sprintf("m%d", (g+i)%4)
					if i%3 == 0 {
						srv.set(model, 503)
					} else {
						srv.set(model, 200)
					}
					_, _ = send(t, rt, chat(t, model))
				}
			})
		}
		wg.Wait()
		total := 0
		for i := range 4 {
			total += srv.count(fmt.Sprintf("m%d", i))
		}
		assert.Positive(t, total)
		assert.LessOrEqual(t, total, 800)
	})
}

func TestContract(t *testing.T) {
	conformance.TestMiddleware(t, breaker.New())
}

type idleCloser struct {
	http.RoundTripper
	closed int
}

func (c *idleCloser) CloseIdleConnections() { c.closed++ }

// http.Client.CloseIdleConnections reaches the transport the breaker
// wraps; a nil one is http.DefaultTransport, as for every decorator.
func TestCloseIdleConnectionsAndANilNext(t *testing.T) {
	base := &idleCloser{}
	(&http.Client{Transport: breaker.New()(base)}).CloseIdleConnections()
	assert.Equal(t, 1, base.closed)
	rt := breaker.New()(nil)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:1/v1/models", nil)
	require.NoError(t, err)
	_, err = rt.RoundTrip(req)
	require.Error(t, err, "sent through http.DefaultTransport, to a port nothing listens on")
}
