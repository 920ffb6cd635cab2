package together_test

// The API key must never leave in an error, an event, a log line or a
// panic. These tests send requests with a key through every path that
// produces one of those, collect everything the caller could print, and
// look for the key in it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

const (
	leakKey = "tgp_v1_SECRETqwertyuiop0123456789asdfghjkl"
	// leakPart is a run of the key's secret part: finding it means a
	// piece of the key leaked even if the whole did not.
	leakPart = "SECRETqwertyuiop"
)

// sink gathers everything a caller could print: errors (as text and with
// their fields), hook events, and the log lines of a slog logger that
// records all of them, as a user's logging would.
type sink struct {
	mu    sync.Mutex
	texts []string
	logs  bytes.Buffer
	log   *slog.Logger
}

func newSink() *sink {
	s := &sink{}
	s.log = slog.New(slog.NewJSONHandler(lockedWriter{s}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return s
}

type lockedWriter struct{ s *sink }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.logs.Write(p)
}

func (s *sink) add(kind string, v any) {
	text := fmt.Sprintf("%v | %+v | %#v", v, v, v)
	if err, ok := v.(error); ok {
		s.log.Error(kind, "err", err)
	} else {
		s.log.Info(kind, "event", v)
	}
	s.mu.Lock()
	s.texts = append(s.texts, kind+": "+text)
	s.mu.Unlock()
}

// addEvent records a transport event without logging it again: the slog
// adapter logs it. Retries, breaker changes and fallbacks are recorded
// under their own kind as well, so check can ask for each path.
func (s *sink) addEvent(e transport.Event) {
	text := fmt.Sprintf("%v | %+v | %#v", e, e, e)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.texts = append(s.texts, "event: "+text)
	switch e.Kind {
	case transport.EventRetry:
		s.texts = append(s.texts, "retry: "+text)
	case transport.EventBreaker:
		s.texts = append(s.texts, "breaker: "+text)
	case transport.EventFellBack:
		s.texts = append(s.texts, "fallback: "+text)
	}
}

// check asserts the key is nowhere in what s gathered, and that s gathered
// at least want items of each kind named.
func (s *sink) check(t *testing.T, want ...string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	all := strings.Join(s.texts, "\n") + "\n" + s.logs.String()
	assert.NotContains(t, all, leakKey)
	assert.NotContains(t, all, leakPart)
	for _, kind := range want {
		assert.Contains(t, all, kind+": ", "the path %q was taken", kind)
		if kind == "event" {
			assert.Contains(t, s.logs.String(), `"endpoint":"chat"`, "the slog adapter logged the events")
		}
	}
}

// leakClient sends through the preset with the key, every hook recorded,
// and every event both recorded and logged by the slog adapter.
func leakClient(base http.RoundTripper, s *sink, opts ...together.Option) *http.Client {
	opts = append([]together.Option{
		together.WithAPIKey(leakKey), together.WithBaseURL("http://sim.test/v1"),
		together.WithEvents(func(e transport.Event) { s.addEvent(e) }),
		together.WithEvents(slogobserve.New(s.log)),
	}, opts...)
	return &http.Client{Transport: together.NewTransport(base, opts...)}
}

// call sends logical request n and records its error, or the APIError of
// its answer.
func (s *sink) call(ctx context.Context, client *http.Client, root string, n int) {
	resp, err := send(ctx, client, root, "/v1/chat/completions", n)
	if err != nil {
		s.add("error", err)
		return
	}
	defer resp.Body.Close()
	if err := together.CheckResponse(resp); err != nil {
		s.add("apierror", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
}

func TestLeakTransportAndDeadlineErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSink()
		refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		client := leakClient(transport.Func(func(r *http.Request) (*http.Response, error) {
			_ = r.Body.Close()
			require.Equal(t, "Bearer "+leakKey, r.Header.Get("Authorization"), "the key is sent")
			return nil, refused
		}), s)
		s.call(context.Background(), client, "http://sim.test", 1)

		sim := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultHang}}})
		client = leakClient(sim, s)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.call(ctx, client, "http://sim.test", 2)

		s.check(t, "error", "retry", "event")
	})
}

func TestLeakBreakerAndFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSink()
		const alt = "Qwen/Qwen2.5-72B-Instruct-Turbo"
		sim := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 503, Model: faultModel},
		}})
		client := leakClient(sim, s, together.WithFallback(faultModel, alt))
		for n := range 5 {
			s.call(context.Background(), client, "http://sim.test", n)
		}
		// Without a fallback the open breaker's error reaches the caller.
		client = leakClient(sim, s, together.WithBreaker(breaker.WithConsecutiveFailures(1)))
		for n := range 3 {
			s.call(context.Background(), client, "http://sim.test", 10+n)
		}
		s.check(t, "retry", "breaker", "fallback", "error", "event")
		s.mu.Lock()
		defer s.mu.Unlock()
		assert.Contains(t, strings.Join(s.texts, "\n"), "breaker: \"sim.test "+faultModel+"\" is open")
	})
}

// echoHandler answers status with the request's Authorization header
// echoed in every field of a Together error body and in x-request-id, as a
// careless gateway might.
func echoHandler(status int, flat bool) transport.Func {
	return func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		auth := r.Header.Get("Authorization")
		key := strings.TrimPrefix(auth, "Bearer ")
		fields := map[string]any{
			"message": "Invalid API key provided: " + key + " (header " + auth + ")",
			"type":    "invalid_api_key " + key,
			"code":    key,
			"param":   "authorization=" + key[:20],
		}
		var body []byte
		if flat {
			body, _ = json.Marshal(fields)
		} else {
			body, _ = json.Marshal(map[string]any{"error": fields})
		}
		h := http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"req-" + key}}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)), Request: r}, nil
	}
}

func TestLeakAPIErrorEchoingTheKey(t *testing.T) {
	for _, status := range []int{401, 400, 429, 503} {
		for _, flat := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d flat=%v", status, flat), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					s := newSink()
					client := leakClient(echoHandler(status, flat), s, together.WithMaxRetries(1))
					s.call(context.Background(), client, "http://sim.test", 1)
					s.check(t, "apierror")
				})
			})
		}
	}
	t.Run("not JSON", func(t *testing.T) {
		s := newSink()
		req, err := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+leakKey)
		body := "<html>bad key " + leakKey + ", its prefix " + leakKey[:12] + ", its start " + leakKey[:30] + "...</html>"
		resp := &http.Response{StatusCode: 401, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body)), Request: req}
		err = together.CheckResponse(resp)
		s.add("apierror", err)
		s.check(t, "apierror")
		assert.NotContains(t, err.Error(), leakKey[8:30], "a cut echo of the key is removed whole")
		assert.Contains(t, err.Error(), "its start [redacted]")
	})
}

func TestLeakOverLoopback(t *testing.T) {
	noLeaks(t)
	s := newSink()
	var echo http.HandlerFunc = func(w http.ResponseWriter, r *http.Request) {
		resp, _ := echoHandler(http.StatusUnauthorized, false)(r)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}
	srv, _, _ := loopback(t, echo)
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey(leakKey), together.WithBaseURL(srv.URL+"/v1"), together.WithEvents(s.addEvent))}
	s.call(context.Background(), client, srv.URL, 1)

	// A key net/http refuses to send (it holds a newline): the error names
	// the header, never its value.
	bad := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey(leakKey+"\nX-Evil: 1"), together.WithBaseURL(srv.URL+"/v1"), together.WithEvents(s.addEvent))}
	s.call(context.Background(), bad, srv.URL, 2)
	s.check(t, "apierror", "error")
}

// An event hook (WithEvents) that panics is recovered, as WithEvents
// documents: the request goes on and its caller sees no panic.
func TestLeakPanickingEventHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newSink()
		// The first attempt, at the bubble's start, is answered 503; a retry
		// comes after a full-jitter backoff drawn in [0, 500 ms), so it is
		// past the fault but for a draw under 1 ms. (A fault of a whole
		// second failed this test when four draws summed to less.)
		sim := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultStatus, Status: 503, Until: time.Millisecond}}})
		var calls int
		client := leakClient(sim, s, together.WithEvents(func(e transport.Event) {
			calls++
			panic(fmt.Sprintf("event hook failed on %+v", e))
		}))
		resp, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 1)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the 503s retried, then served")
		assert.Positive(t, calls)
		s.check(t, "event", "retry")
	})
}
