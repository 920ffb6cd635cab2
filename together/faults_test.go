package together_test

// The fault table of docs/faults.md: each test is one row. Every request
// goes through the whole preset (together.NewTransport), either over
// loopback to the simulator (or to a small handler that misbehaves in a way
// the simulator does not script) with a clone of http.DefaultTransport as
// the base, or in memory inside a synctest bubble. Each test checks the
// caller's one outcome, the number of times the server saw each logical
// request, and that nothing outlives the call (goleak, in TestMain and
// per test).

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

const (
	faultKey   = "tgp_v1_FAULTKEY0123456789abcdef"
	faultModel = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	// faultAttempts is what the preset's default policy allows a logical
	// request: the first attempt and retry.DefaultMaxRetries more.
	faultAttempts = 1 + retry.DefaultMaxRetries
)

// faultChat is the body of logical request n: each one distinct, so the
// server's arrivals can be told apart by body.
func faultChat(n int) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"fault request %d"}],"max_tokens":16}`, faultModel, n)
}

func bodyHash(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

// countingBase counts the attempts that reach the base transport: what the
// preset sent, whatever became of it.
type countingBase struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (c *countingBase) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// loopback serves h on a loopback port and returns a client through the
// whole preset over a clone of http.DefaultTransport, and the attempt
// counter. The server and the clone's connections are closed at the end.
func loopback(t *testing.T, h http.Handler, opts ...together.Option) (*httptest.Server, *http.Client, *countingBase) {
	t.Helper()
	srv := httptest.NewServer(h)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		base.CloseIdleConnections()
		srv.Close()
	})
	cb := &countingBase{next: base}
	opts = append([]together.Option{together.WithAPIKey(faultKey), together.WithBaseURL(srv.URL + "/v1")}, opts...)
	return srv, &http.Client{Transport: together.NewTransport(cb, opts...)}, cb
}

// inMemory returns a client through the whole preset over base, inside the
// caller's bubble.
func inMemory(base http.RoundTripper, opts ...together.Option) (*http.Client, *countingBase) {
	cb := &countingBase{next: base}
	opts = append([]together.Option{together.WithAPIKey(faultKey), together.WithBaseURL("http://sim.test/v1")}, opts...)
	return &http.Client{Transport: together.NewTransport(cb, opts...)}, cb
}

// send posts logical request n to root + path.
func send(ctx context.Context, client *http.Client, root, path string, n int) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, root+path, strings.NewReader(faultChat(n)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

// arrivalsOf counts the simulator's arrivals of logical request n.
func arrivalsOf(srv *conformance.Server, n int) int {
	h, count := bodyHash(faultChat(n)), 0
	for _, a := range srv.Arrivals() {
		if a.BodyHash == h {
			count++
		}
	}
	return count
}

// perBody counts, by request body, the requests a handler receives before
// passing them on, so a misbehaving handler's arrivals are counted too.
type perBody struct {
	mu     sync.Mutex
	counts map[string]int
	next   http.Handler
}

func countArrivals(next http.Handler) *perBody {
	return &perBody{counts: map[string]int{}, next: next}
}

func (p *perBody) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.counts[string(b)]++
	p.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	p.next.ServeHTTP(w, r)
}

func (p *perBody) of(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[faultChat(n)]
}

func (p *perBody) total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for _, c := range p.counts {
		total += c
	}
	return total
}

// noLeaks checks, at the end of a test, that the test left no goroutine
// behind (the loopback server and idle connections are closed first, by
// the cleanups registered before this one).
func noLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

func TestFaultConnectionRefused(t *testing.T) {
	t.Run("loopback", func(t *testing.T) {
		noLeaks(t)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		root := "http://" + ln.Addr().String()
		require.NoError(t, ln.Close()) // nothing listens there now

		base := http.DefaultTransport.(*http.Transport).Clone()
		defer base.CloseIdleConnections()
		cb := &countingBase{next: base}
		client := &http.Client{Transport: together.NewTransport(cb, together.WithAPIKey(faultKey), together.WithMaxRetries(2))}

		resp, err := send(context.Background(), client, root, "/v1/chat/completions", 1)
		require.Error(t, err)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, syscall.ECONNREFUSED)
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 3, re.Attempts, "a refused dial never reached the server: retried up to the policy")
		assert.Equal(t, int64(3), cb.n.Load())
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
			client, cb := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
				if r.Body != nil {
					_ = r.Body.Close()
				}
				return nil, refused
			}))
			start := time.Now()
			_, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 1)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED)
			assert.Equal(t, int64(faultAttempts), cb.n.Load())
			// Full-jitter backoff: each wait is below its cap, 0.5+1+2+4 s.
			assert.Less(t, time.Since(start), 7500*time.Millisecond)
		})
	})
}

func TestFaultResetMidRequest(t *testing.T) {
	reset := []conformance.Fault{{Kind: conformance.FaultReset}}
	t.Run("loopback", func(t *testing.T) {
		noLeaks(t)
		sim := conformance.NewServer(conformance.Config{Faults: reset})
		srv, client, cb := loopback(t, sim, together.WithMaxRetries(2))
		resp, err := send(context.Background(), client, srv.URL, "/v1/chat/completions", 1)
		require.Error(t, err)
		assert.Nil(t, resp)
		// The server read the request before it reset the connection: it
		// may have done the work, and a chat completion sent again is
		// billed again. It is sent once.
		assert.True(t, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF), "%v", err)
		assert.Equal(t, 1, arrivalsOf(sim, 1), "sent once")
		assert.Equal(t, int64(1), cb.n.Load())
	})
	t.Run("loopback with an Idempotency-Key", func(t *testing.T) {
		noLeaks(t)
		sim := conformance.NewServer(conformance.Config{Faults: reset})
		srv, client, cb := loopback(t, sim, together.WithMaxRetries(2))
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(faultChat(1)))
		require.NoError(t, err)
		req.Header.Set("Idempotency-Key", "req-1") // the server deduplicates: safe to send again
		resp, err := client.Do(req)
		require.Error(t, err)
		assert.Nil(t, resp)
		assert.Equal(t, 3, arrivalsOf(sim, 1), "each attempt reached the server once")
		assert.Equal(t, int64(3), cb.n.Load())
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := conformance.NewServer(conformance.Config{Faults: reset})
			client, _ := inMemory(sim)
			for n := range breaker.DefaultConsecutiveFailures {
				_, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", n)
				assert.ErrorIs(t, err, syscall.ECONNRESET)
				assert.Equal(t, 1, arrivalsOf(sim, n), "sent once")
			}
			// Five failed requests in a row opened the model's breaker: the
			// next request fails fast and is not sent at all.
			_, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 100)
			assert.ErrorIs(t, err, transport.ErrModelUnavailable)
			assert.Zero(t, arrivalsOf(sim, 100))
		})
	})
}

// resetMidBody answers status with headers that promise 4096 bytes, sends
// a part of them and resets the connection (RST, not a close).
func resetMidBody(status int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n", status, http.StatusText(status))
		buf.WriteString(`{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hel`)
		_ = buf.Flush()
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = conn.Close()
	})
}

func TestFaultResetMidBody(t *testing.T) {
	t.Run("200", func(t *testing.T) {
		noLeaks(t)
		h := countArrivals(resetMidBody(http.StatusOK))
		srv, client, _ := loopback(t, h)
		resp, err := send(context.Background(), client, srv.URL, "/v1/chat/completions", 1)
		require.NoError(t, err, "the headers came: the call returns the response")
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		_, rerr := io.ReadAll(resp.Body)
		assert.Error(t, rerr, "reading the body reports the reset")
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, 1, h.of(1), "a returned answer is never retried")
	})
	t.Run("503", func(t *testing.T) {
		noLeaks(t)
		h := countArrivals(resetMidBody(http.StatusServiceUnavailable))
		srv, client, _ := loopback(t, h, together.WithMaxRetries(2))
		resp, err := send(context.Background(), client, srv.URL, "/v1/chat/completions", 1)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the last attempt's answer, as it came")
		var api *together.APIError
		require.ErrorAs(t, together.CheckResponse(resp), &api)
		assert.ErrorIs(t, api, together.ErrOverloaded)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, 3, h.of(1), "discarded answers drained despite the reset, then retried")
	})
	t.Run("EmbedAll", func(t *testing.T) {
		noLeaks(t)
		h := countArrivals(resetMidBody(http.StatusOK))
		srv, client, _ := loopback(t, h)
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, texts(3),
			together.WithoutModelCheck(), together.WithAPIBase(srv.URL+"/v1"))
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Equal(t, []int{0, 1, 2}, partial.Failed)
		assert.Equal(t, []float32(nil), vecs[0])
		assert.Equal(t, 1, h.total())
	})
}

func TestFaultNeverAnswers(t *testing.T) {
	hang := []conformance.Fault{{Kind: conformance.FaultHang}}
	t.Run("loopback", func(t *testing.T) {
		noLeaks(t)
		sim := conformance.NewServer(conformance.Config{Faults: hang})
		srv, client, _ := loopback(t, sim)
		const deadline = 300 * time.Millisecond
		start := time.Now() // before the deadline is set, which counts from its own now
		ctx, cancel := context.WithDeadline(context.Background(), start.Add(deadline))
		defer cancel()
		resp, err := send(ctx, client, srv.URL, "/v1/chat/completions", 1)
		took := time.Since(start)
		require.Error(t, err)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		// Loopback runs on the real clock: the figure is logged, and the
		// exact bound is the in-memory subtest's.
		t.Logf("returned after %v for a deadline of %v", took, deadline)
		assert.GreaterOrEqual(t, took, deadline)
		assert.Equal(t, 1, arrivalsOf(sim, 1), "a deadline is not retried")
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := conformance.NewServer(conformance.Config{Faults: hang})
			client, _ := inMemory(sim)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			_, err := send(ctx, client, "http://sim.test", "/v1/chat/completions", 1)
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Equal(t, 5*time.Second, time.Since(start), "returned at the deadline, not later")
			assert.Equal(t, 1, arrivalsOf(sim, 1))
		})
	})
}

// trickle answers status with a body of one byte every interval, forever
// (until the client goes away).
func trickle(status int, interval time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		rc := http.NewResponseController(w)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})
}

// slowBody is an in-memory body that yields a byte every interval until
// its context ends, as a body read from a connection does.
type slowBody struct {
	ctx      context.Context
	interval time.Duration
	closed   atomic.Bool
}

func (b *slowBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	select {
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	case <-time.After(b.interval):
		p[0] = ' '
		return 1, nil
	}
}

func (b *slowBody) Close() error { b.closed.Store(true); return nil }

func TestFaultTricklingBody(t *testing.T) {
	const deadline = 300 * time.Millisecond
	t.Run("loopback 200", func(t *testing.T) {
		noLeaks(t)
		h := countArrivals(trickle(http.StatusOK, 10*time.Millisecond))
		srv, client, _ := loopback(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		resp, err := send(ctx, client, srv.URL, "/v1/chat/completions", 1)
		require.NoError(t, err)
		_, rerr := io.ReadAll(resp.Body)
		require.NoError(t, resp.Body.Close())
		took := time.Since(start)
		assert.ErrorIs(t, rerr, context.DeadlineExceeded, "the deadline ends the read")
		t.Logf("read ended after %v for a deadline of %v", took, deadline)
		assert.Equal(t, 1, h.of(1))
	})
	t.Run("loopback 503", func(t *testing.T) {
		// The retry decorator drains a discarded 503: a body that never
		// ends must not hold it past the deadline.
		noLeaks(t)
		h := countArrivals(trickle(http.StatusServiceUnavailable, 10*time.Millisecond))
		srv, client, _ := loopback(t, h)
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		resp, err := send(ctx, client, srv.URL, "/v1/chat/completions", 1)
		took := time.Since(start)
		if err == nil { // the loop kept the answer: the caller's read ends at the deadline
			_, rerr := io.ReadAll(resp.Body)
			assert.ErrorIs(t, rerr, context.DeadlineExceeded)
			require.NoError(t, resp.Body.Close())
		} else {
			assert.ErrorIs(t, err, context.DeadlineExceeded)
		}
		t.Logf("returned after %v for a deadline of %v (err %v)", took, deadline, err)
		assert.LessOrEqual(t, h.of(1), faultAttempts)
		assert.GreaterOrEqual(t, h.of(1), 1)
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var bodies []*slowBody
			var mu sync.Mutex
			client, cb := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
				_ = r.Body.Close()
				b := &slowBody{ctx: r.Context(), interval: 300 * time.Millisecond}
				mu.Lock()
				bodies = append(bodies, b)
				mu.Unlock()
				return &http.Response{StatusCode: 200, Header: http.Header{}, Body: b, ContentLength: -1, Request: r}, nil
			}))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			resp, err := send(ctx, client, "http://sim.test", "/v1/chat/completions", 1)
			require.NoError(t, err)
			n, rerr := io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
			assert.ErrorIs(t, rerr, context.DeadlineExceeded)
			assert.Equal(t, 5*time.Second, time.Since(start), "ended at the deadline")
			assert.EqualValues(t, 16, n, "a byte every 300 ms until the deadline")
			assert.Equal(t, int64(1), cb.n.Load())
			require.Len(t, bodies, 1)
			assert.True(t, bodies[0].closed.Load())
		})
	})
}

// countingBody counts the bytes read from a response body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// endless yields the same byte for ever.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

func TestFaultHugeErrorBodyInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const size = 50 << 20
		var read atomic.Int64
		client, cb := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
			_ = r.Body.Close()
			body := io.MultiReader(strings.NewReader(`{"error":{"message":"`), io.LimitReader(endless('x'), size))
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: countingBody{ReadCloser: io.NopCloser(body), n: &read}, ContentLength: size, Request: r}, nil
		}))
		resp, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 1)
		require.NoError(t, err)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		var api *together.APIError
		require.ErrorAs(t, together.CheckResponse(resp), &api)
		assert.LessOrEqual(t, len(api.Message), 512)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, int64(faultAttempts), cb.n.Load())
		// Four discarded answers drained and the caller's CheckResponse,
		// 64 KiB each at most.
		assert.LessOrEqual(t, read.Load(), int64(faultAttempts*(64<<10)))
		t.Logf("read %d bytes of %d answers of %d MB", read.Load(), faultAttempts, size>>20)
	})
}

func TestFaultHugeErrorBody(t *testing.T) {
	noLeaks(t)
	const size = 50 << 20
	h := countArrivals(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", fmt.Sprint(size))
		w.WriteHeader(http.StatusServiceUnavailable)
		chunk := []byte(`{"error":{"message":"` + strings.Repeat("x", 32<<10-21))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk[:min(len(chunk), size-sent)]); err != nil {
				return
			}
			chunk = []byte(strings.Repeat("x", 32<<10))
		}
	}))
	srv := httptest.NewServer(h)
	base := http.DefaultTransport.(*http.Transport).Clone()
	defer func() {
		base.CloseIdleConnections()
		srv.Close()
	}()
	var read atomic.Int64
	var responses atomic.Int64
	counted := transport.Func(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if resp != nil {
			responses.Add(1)
			resp.Body = countingBody{ReadCloser: resp.Body, n: &read}
		}
		return resp, err
	})
	client := &http.Client{Transport: together.NewTransport(counted, together.WithAPIKey(faultKey), together.WithMaxRetries(2))}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	resp, err := send(context.Background(), client, srv.URL, "/v1/chat/completions", 1)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	apiErr := together.CheckResponse(resp)
	var api *together.APIError
	require.ErrorAs(t, apiErr, &api)
	assert.LessOrEqual(t, len(api.Message), 512, "a body that does not parse gives only its first bytes")
	require.NoError(t, resp.Body.Close())

	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("read %d bytes of %d responses of %d MB; heap %d -> %d bytes (%+d)",
		read.Load(), responses.Load(), size>>20, before.HeapAlloc, after.HeapAlloc, growth)
	assert.Equal(t, 3, h.of(1))
	assert.Equal(t, int64(3), responses.Load())
	// Two discarded answers drained (64 KiB each at most) and the caller's
	// CheckResponse (64 KiB at most), plus what one read overshoots.
	assert.LessOrEqual(t, read.Load(), int64(3*(64<<10)+3*(32<<10)))
	assert.Less(t, growth, int64(4<<20), "the heap holds none of the 50 MB bodies")
}

// headerCase is one header value a 429 (or a 503) arrives with, and what
// the preset makes of it.
type headerCase struct {
	name   string
	status int
	header http.Header // nil: no headers at all
	// serverWait is the wait the header asks for, or 0 when it asks for
	// nothing usable and backoff applies.
	serverWait time.Duration
	// gaveUp is set when the wait is over the retry policy's cap: the
	// answer is returned at once.
	gaveUp bool
}

func TestFaultRateHeaders(t *testing.T) {
	past := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Format(http.TimeFormat)
	h := func(k, v string) http.Header { return http.Header{k: {v}} }
	cases := []headerCase{
		{name: "Retry-After -1", status: 429, header: h("Retry-After", "-1")},
		{name: "Retry-After 0", status: 429, header: h("Retry-After", "0")},
		{name: "Retry-After 1e12", status: 429, header: h("Retry-After", "1e12"), gaveUp: true},
		{name: "Retry-After garbage", status: 429, header: h("Retry-After", "soon, maybe")},
		{name: "Retry-After past date", status: 429, header: h("Retry-After", past)},
		{name: "Retry-After 2 on a 503", status: 503, header: h("Retry-After", "2"), serverWait: 2 * time.Second},
		{name: "x-ratelimit-reset negative", status: 429, header: h("X-Ratelimit-Reset", "-5")},
		{name: "x-ratelimit-reset garbage", status: 429, header: h("X-Ratelimit-Reset", "banana")},
		{name: "x-ratelimit-reset huge", status: 429, header: h("X-Ratelimit-Reset", "1e300"), gaveUp: true},
		{name: "x-ratelimit-reset NaN", status: 429, header: h("X-Ratelimit-Reset", "NaN")},
		{name: "x-ratelimit-reset Inf", status: 429, header: h("X-Ratelimit-Reset", "+Inf")},
		{name: "x-ratelimit-reset HTTP date", status: 429, header: h("X-Ratelimit-Reset", past)},
		{name: "x-ratelimit-reset RFC 3339 past", status: 429, header: h("X-Ratelimit-Reset", "2000-01-01T00:00:00Z")},
		{name: "x-ratelimit-reset empty", status: 429, header: h("X-Ratelimit-Reset", "")},
		{name: "x-ratelimit-reset 3", status: 429, header: h("X-Ratelimit-Reset", "3"), serverWait: 3 * time.Second},
		{name: "429 without headers", status: 429, header: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var known string
			synctest.Test(t, func(t *testing.T) { known = checkRateHeader(t, tc) })
			if known != "" {
				t.Skip(known)
			}
		})
	}
}

// checkRateHeader sends two logical requests, 1 and 2, to a server that
// answers the first attempt of each with tc's answer and every later one
// with 200. It checks the outcome, the arrivals, the time each took and
// that no header value parks the limiter beyond the caller's deadline. It
// returns why the rest of the case was skipped, for a known bug.
func checkRateHeader(t *testing.T, tc headerCase) (known string) {
	sim := conformance.NewServer(conformance.Config{})
	var mu sync.Mutex
	arrivals := map[string]int{}
	client, _ := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
		b, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		mu.Lock()
		arrivals[string(b)]++
		first := arrivals[string(b)] == 1
		mu.Unlock()
		if first {
			h := http.Header{}
			for k, v := range tc.header {
				h[k] = v
			}
			h.Set("Content-Type", "application/json")
			body := `{"error":{"message":"slow down","type":"dynamic_request_limited"}}`
			return &http.Response{StatusCode: tc.status, Header: h, Body: io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)), Request: r}, nil
		}
		r2 := r.Clone(r.Context())
		r2.Body = io.NopCloser(strings.NewReader(string(b)))
		r2.ContentLength = int64(len(b))
		return sim.RoundTrip(r2)
	}))

	for n := 1; n <= 2; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		start := time.Now()
		resp, err := send(ctx, client, "http://sim.test", "/v1/chat/completions", n)
		took := time.Since(start)
		cancel()
		require.NoError(t, err, "request %d", n)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		mu.Lock()
		got := arrivals[faultChat(n)]
		mu.Unlock()
		switch {
		case tc.gaveUp && n == 1:
			assert.Equal(t, tc.status, resp.StatusCode, "a wait over the cap: the answer is the caller's at once")
			assert.Equal(t, 1, got)
			assert.Zero(t, took)
		case tc.gaveUp:
			// The limiter pauses the key for at most bucket.DefaultMaxPause
			// however long the server asks, then sends: this request's first
			// attempt gets the same over-the-cap 429, which is the caller's
			// at once.
			assert.Equal(t, tc.status, resp.StatusCode, "request %d", n)
			assert.Equal(t, 1, got)
			assert.LessOrEqual(t, took, bucket.DefaultMaxPause)
		case n == 1:
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, 2, got, "one retry, no more")
			if tc.serverWait > 0 {
				assert.GreaterOrEqual(t, took, tc.serverWait, "the server's wait is honoured")
				assert.LessOrEqual(t, took, tc.serverWait+time.Second, "plus at most a second of jitter")
			} else {
				// An unusable header: the limiter's default pause of 1 s
				// (bucket.DefaultPause) covers the first backoff.
				assert.LessOrEqual(t, took, time.Second+500*time.Millisecond)
			}
		default:
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, 2, got)
			assert.Less(t, took, tc.serverWait+2*time.Second, "the limiter is not parked by the header")
		}
	}
	return ""
}

func TestFaultTooManyWithoutHeadersEveryTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, cb := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
			_ = r.Body.Close()
			return &http.Response{StatusCode: 429, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}))
		resp, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 1)
		require.NoError(t, err)
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.ErrorIs(t, together.CheckResponse(resp), together.ErrRateLimited)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, int64(faultAttempts), cb.n.Load(), "backoff retries up to the policy, then the last 429")
	})
}

func TestFaultTruncatedBody(t *testing.T) {
	truncate := []conformance.Fault{{Kind: conformance.FaultTruncate}}
	check := func(t *testing.T, sim *conformance.Server, client *http.Client, root string) {
		resp, err := send(context.Background(), client, root, "/v1/chat/completions", 1)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		_, rerr := io.ReadAll(resp.Body)
		assert.ErrorIs(t, rerr, io.ErrUnexpectedEOF)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, 1, arrivalsOf(sim, 1))

		vecs, err := together.EmbedAll(context.Background(), client, embedModel, texts(3),
			together.WithoutModelCheck(), together.WithAPIBase(root+"/v1"))
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, []int{0, 1, 2}, partial.Failed)
		assert.Equal(t, [][]float32{nil, nil, nil}, vecs)
		assert.Equal(t, conformance.Stats{Arrivals: 2, OK: 2}, sim.Stats())
	}
	t.Run("loopback", func(t *testing.T) {
		noLeaks(t)
		sim := conformance.NewServer(conformance.Config{Faults: truncate})
		srv, client, _ := loopback(t, sim)
		check(t, sim, client, srv.URL)
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sim := conformance.NewServer(conformance.Config{Faults: truncate})
			client, _ := inMemory(sim)
			check(t, sim, client, "http://sim.test")
		})
	})
}

func TestFaultRedirects(t *testing.T) {
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			noLeaks(t)
			sim := conformance.NewServer(conformance.Config{})
			var moved atomic.Int64
			mux := http.NewServeMux()
			mux.HandleFunc("/old/chat", func(w http.ResponseWriter, r *http.Request) {
				moved.Add(1)
				http.Redirect(w, r, "/v1/chat/completions", code)
			})
			mux.Handle("/v1/", sim)
			srv, client, _ := loopback(t, mux)
			resp, err := send(context.Background(), client, srv.URL, "/old/chat", 1)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, int64(1), moved.Load())
			require.Len(t, sim.Arrivals(), 1)
			a := sim.Arrivals()[0]
			assert.Equal(t, bodyHash(faultChat(1)), a.BodyHash, "the body is replayed byte-identical after the redirect")
			assert.Equal(t, faultKey, a.Key, "the key is sent to the same host")
		})
	}
	t.Run("loop", func(t *testing.T) {
		noLeaks(t)
		var hits atomic.Int64
		srv, client, _ := loopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			http.Redirect(w, r, r.URL.Path, http.StatusTemporaryRedirect)
		}))
		resp, err := send(context.Background(), client, srv.URL, "/v1/chat/completions", 1)
		require.Error(t, err)
		// http.Client's own outcome: the last redirect's response, its body
		// already closed, beside the error.
		require.NotNil(t, resp)
		assert.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
		assert.ErrorContains(t, err, "stopped after 10 redirects")
		assert.Equal(t, int64(10), hits.Load())
	})
}

// panicValue is what the base transport of TestFaultBasePanics panics
// with.
type panicValue struct{ msg string }

func TestFaultBasePanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, cb := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
			panic(panicValue{"base transport bug"})
		}))
		got := func() (v any) {
			defer func() { v = recover() }()
			resp, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", 1)
			if err == nil {
				_ = resp.Body.Close()
			}
			return nil
		}()
		// As net/http's own transports, steady does not recover a panic it
		// did not cause: it reaches the caller unchanged, once, with
		// nothing of the request in it.
		assert.Equal(t, panicValue{"base transport bug"}, got)
		assert.NotContains(t, fmt.Sprint(got), faultKey)
		assert.Equal(t, int64(1), cb.n.Load(), "a panic is not retried")
	})
}

func TestFaultBasePanicsLeavesTheBreakerUsable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var panicking atomic.Bool
		var failing atomic.Bool
		client, _ := inMemory(transport.Func(func(r *http.Request) (*http.Response, error) {
			_ = r.Body.Close()
			if panicking.Load() {
				panic(panicValue{"base transport bug"})
			}
			status := http.StatusOK
			if failing.Load() {
				status = http.StatusInternalServerError
			}
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
		}), together.WithMaxRetries(0))
		call := func(n int) (status int, err error, panicked bool) {
			defer func() {
				if recover() != nil {
					panicked = true
				}
			}()
			resp, err := send(context.Background(), client, "http://sim.test", "/v1/chat/completions", n)
			if err != nil {
				return 0, err, false
			}
			_ = resp.Body.Close()
			return resp.StatusCode, nil, false
		}
		// Trip the model's breaker, then wait until it lets probes through.
		failing.Store(true)
		for n := range 5 {
			_, _, _ = call(n)
		}
		_, err, _ := call(100)
		require.ErrorIs(t, err, transport.ErrModelUnavailable, "the breaker is open")
		failing.Store(false)
		time.Sleep(2 * time.Minute)

		// The half-open breaker's first probe panics (a caller such as an
		// http.Server recovers and carries on): it counts as a failure, so
		// the breaker opens again and the next requests fail fast.
		panicking.Store(true)
		_, _, p := call(200)
		require.True(t, p, "the panic reaches the caller")
		for n := range 2 {
			_, err, p := call(201 + n)
			require.False(t, p)
			require.ErrorIs(t, err, transport.ErrModelUnavailable, "the breaker opened again")
		}
		panicking.Store(false)
		time.Sleep(10 * time.Minute)
		status, err, _ := call(300)
		require.NoError(t, err, "a probe that panicked counted as a failure; the breaker probes again")
		assert.Equal(t, http.StatusOK, status)
	})
}
