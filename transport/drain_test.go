package transport_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// countingBody is an endless body that counts what is read and whether it
// was closed.
type countingBody struct {
	read   int64
	closed bool
}

func (b *countingBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	b.read += int64(len(p))
	return len(p), nil
}

func (b *countingBody) Close() error { b.closed = true; return nil }

func TestDrainReadsAtMostLimitAndCloses(t *testing.T) {
	body := &countingBody{}
	transport.Drain(&http.Response{Body: body})
	assert.True(t, body.closed)
	assert.Equal(t, int64(transport.DrainLimit), body.read, "a 50 MB or endless body is not read past the limit")
}

func TestDrainShortBody(t *testing.T) {
	r := &readCloser{Reader: io.LimitReader(&countingBody{}, 10)}
	transport.Drain(&http.Response{Body: r})
	assert.True(t, r.closed)
}

func TestDrainNil(t *testing.T) {
	assert.NotPanics(t, func() {
		transport.Drain(nil)
		transport.Drain(&http.Response{})
	})
}

type readCloser struct {
	io.Reader
	closed bool
}

func (r *readCloser) Close() error { r.closed = true; return nil }

// stalledBody is the body of an answer whose server sent its head and
// then nothing: a read blocks until the body is closed.
type stalledBody struct {
	closed chan struct{}
	closes atomic.Int32
}

func newStalledBody() *stalledBody { return &stalledBody{closed: make(chan struct{})} }

func (b *stalledBody) Read([]byte) (int, error) {
	<-b.closed
	return 0, io.ErrUnexpectedEOF
}

func (b *stalledBody) Close() error {
	if b.closes.Add(1) == 1 {
		close(b.closed)
	}
	return nil
}

// A body that stalls is closed once DrainWait has passed, and Drain
// returns then: what comes next (a retry, a fallback) is not held up.
func TestDrainClosesABodyThatStalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := newStalledBody()
		start := time.Now()
		transport.Drain(&http.Response{Body: body})
		assert.Equal(t, transport.DrainWait, time.Since(start))
		synctest.Wait()
		assert.Equal(t, int32(1), body.closes.Load(), "closed once")
	})
}

// A body that comes in time is read and closed by Drain itself: the
// timer that would close a stalled one never fires.
func TestDrainClosesAWholeBodyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		body := &closeCounter{ReadCloser: io.NopCloser(io.LimitReader(&countingBody{}, 100))}
		transport.Drain(&http.Response{Body: body})
		time.Sleep(2 * transport.DrainWait)
		assert.Equal(t, 1, body.n)
	})
}

type closeCounter struct {
	io.ReadCloser
	n int
}

func (c *closeCounter) Close() error { c.n++; return c.ReadCloser.Close() }

// Over a real connection: a server that sends an answer's head and
// stalls its body does not hold Drain, which returns long before the
// request's own end would close the body, the body closed under it.
func TestDrainDoesNotWaitForAStalledServer(t *testing.T) {
	srv := stallingServer(t, http.StatusServiceUnavailable, "")
	// The request's end would close the body too: Drain must not wait
	// for it.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	transport.Drain(resp)
	assert.NoError(t, ctx.Err(), "Drain returned before the request's end")
	_, err = resp.Body.Read(make([]byte, 1))
	assert.Error(t, err, "the body is closed")
}

// stallingServer answers every request with status and a body of 100
// bytes, of which it sends head and then nothing until the request ends
// or the test does.
func stallingServer(t *testing.T, status int, head string) *httptest.Server {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, head)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // cleanups run last first: before Close
	return srv
}

// PeekBody hands back the first bytes of a body and leaves the body whole
// for the caller: a short one read to its end, a long one read on past
// what was peeked, and one that stalls closed after DrainWait, with what
// came of it still the caller's.
func TestPeekBodyLeavesTheBodyWhole(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		short := &readCloser{Reader: strings.NewReader(`{"error":"x"}`)}
		resp := &http.Response{Body: short}
		peek, err := transport.PeekBody(resp, 64)
		require.NoError(t, err)
		assert.Equal(t, `{"error":"x"}`, string(peek))
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "a body read to its end ends cleanly")
		assert.Equal(t, `{"error":"x"}`, string(b))
		assert.False(t, short.closed, "the caller closes the body")
		require.NoError(t, resp.Body.Close())
		assert.True(t, short.closed)

		resp = &http.Response{Body: io.NopCloser(strings.NewReader("0123456789"))}
		peek, err = transport.PeekBody(resp, 4)
		require.NoError(t, err)
		assert.Equal(t, "0123", string(peek))
		b, _ = io.ReadAll(resp.Body)
		assert.Equal(t, "0123456789", string(b))

		stalled := newStalledBody()
		resp = &http.Response{Body: struct {
			io.Reader
			io.Closer
		}{io.MultiReader(strings.NewReader("head"), stalled), stalled}}
		start := time.Now()
		peek, err = transport.PeekBody(resp, 64)
		assert.Equal(t, transport.DrainWait, time.Since(start), "a stalled body is waited for DrainWait")
		require.Error(t, err)
		assert.Equal(t, "head", string(peek))
		b, err = io.ReadAll(resp.Body)
		require.Error(t, err, "the rest of a body closed for stalling fails")
		assert.Equal(t, "head", string(b))

		peek, err = transport.PeekBody(nil, 64)
		assert.Nil(t, peek)
		assert.NoError(t, err)
	})
}

// stallingAnswer is an answer to a request of ctx whose body is not
// net/http's (nothing closes it when the request ends): it sends head,
// then stalls until it is closed.
func stallingAnswer(ctx context.Context, head string) (*http.Response, *stalledBody) {
	stalled := newStalledBody()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", nil)
	return &http.Response{StatusCode: http.StatusServiceUnavailable, Request: req, Body: struct {
		io.Reader
		io.Closer
	}{io.MultiReader(strings.NewReader(head), stalled), stalled}}, stalled
}

// endings are the ways a request ends 100 ms in, before DrainWait has
// passed: its deadline, or its cancellation.
var endings = []struct {
	name string
	ctx  func(t *testing.T) context.Context
}{
	{"deadline", func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}},
	{"canceled", func(t *testing.T) context.Context {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		time.AfterFunc(100*time.Millisecond, cancel)
		return ctx
	}},
}

// A body that stalls, of a request that ends before DrainWait has passed,
// is closed when the request ends, and Drain returns then: a body that is
// not net/http's (a test double, a cache, a decoder, another decorator's)
// does not hold the request past its end.
func TestDrainEndsWithTheRequest(t *testing.T) {
	for _, tc := range endings {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				resp, body := stallingAnswer(tc.ctx(t), "head")
				start := time.Now()
				transport.Drain(resp)
				assert.Equal(t, 100*time.Millisecond, time.Since(start), "Drain returned at the request's end")
				time.Sleep(2 * transport.DrainWait)
				assert.Equal(t, int32(1), body.closes.Load(), "closed once")
			})
		})
	}
}

// A request already over when its answer is drained does not wait for
// the body: it is closed at once.
func TestDrainOfAnEndedRequestClosesTheBodyAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		resp, body := stallingAnswer(ctx, "")
		start := time.Now()
		transport.Drain(resp)
		assert.Zero(t, time.Since(start))
		time.Sleep(2 * transport.DrainWait)
		assert.Equal(t, int32(1), body.closes.Load(), "closed once")
	})
}

// A body read in time is closed by Drain alone: the request's end, after
// Drain, closes nothing more.
func TestDrainOfABodyReadInTimeIsNotClosedAgainWhenTheRequestEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.example.com/v1/chat/completions", nil)
		body := &closeCounter{ReadCloser: io.NopCloser(strings.NewReader("short"))}
		transport.Drain(&http.Response{Body: body, Request: req})
		cancel()
		time.Sleep(2 * transport.DrainWait)
		assert.Equal(t, 1, body.n)
	})
}

// PeekBody of a body that stalls, for a request that ends before DrainWait
// has passed, returns when the request ends, with what came before: the
// body is closed then, as after DrainWait, and its rest fails.
func TestPeekBodyEndsWithTheRequest(t *testing.T) {
	for _, tc := range endings {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				resp, body := stallingAnswer(tc.ctx(t), "head")
				start := time.Now()
				peek, err := transport.PeekBody(resp, 64)
				assert.Equal(t, 100*time.Millisecond, time.Since(start), "PeekBody returned at the request's end")
				require.Error(t, err)
				assert.Equal(t, "head", string(peek))
				b, err := io.ReadAll(resp.Body)
				require.Error(t, err, "the rest of a body closed at the request's end fails")
				assert.Equal(t, "head", string(b))
				time.Sleep(2 * transport.DrainWait)
				assert.Equal(t, int32(1), body.closes.Load(), "closed once")
			})
		})
	}
}
