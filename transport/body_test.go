package transport_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// trackedBody is a request body without GetBody that records whether it was
// closed.
type trackedBody struct {
	io.Reader
	closed int
}

func (b *trackedBody) Close() error { b.closed++; return nil }

func readAll(t *testing.T, r *http.Request) string {
	t.Helper()
	if r.Body == nil {
		return ""
	}
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	require.NoError(t, r.Body.Close())
	return string(b)
}

func TestReplayWithGetBody(t *testing.T) {
	req, err := http.NewRequest("POST", "http://x.test/", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	var r transport.Replay
	require.NoError(t, r.Reset(req, 0))
	assert.True(t, r.CanReplay())

	first, err := r.Request()
	require.NoError(t, err)
	assert.Same(t, req, first, "the first attempt sends the caller's request as it is")
	assert.Equal(t, `{"model":"m"}`, readAll(t, first))

	for range 3 {
		next, err := r.Request()
		require.NoError(t, err)
		assert.NotSame(t, req, next)
		assert.Equal(t, `{"model":"m"}`, readAll(t, next))
		assert.Equal(t, req.ContentLength, next.ContentLength)
	}
	assert.Equal(t, 4, r.Attempts())
}

func TestReplayBuffersBodyWithoutGetBody(t *testing.T) {
	body := &trackedBody{Reader: strings.NewReader("hello, world")}
	req, err := http.NewRequest("POST", "http://x.test/", body)
	require.NoError(t, err)
	require.Nil(t, req.GetBody)
	var r transport.Replay
	require.NoError(t, r.Reset(req, 0))
	assert.True(t, r.CanReplay())
	assert.Equal(t, 1, body.closed, "the caller's body is closed once it is buffered")
	for range 3 {
		next, err := r.Request()
		require.NoError(t, err)
		assert.NotSame(t, req, next)
		assert.Equal(t, int64(12), next.ContentLength)
		require.NotNil(t, next.GetBody)
		assert.Equal(t, "hello, world", readAll(t, next))
	}
	assert.Same(t, body, req.Body, "the caller's request is not modified")
}

func TestReplayOverLimitIsSentOnceWhole(t *testing.T) {
	payload := strings.Repeat("a", 100)
	body := &trackedBody{Reader: strings.NewReader(payload)}
	req, err := http.NewRequest("POST", "http://x.test/", body)
	require.NoError(t, err)
	req.ContentLength = -1 // unknown length: the limit is found by reading
	var r transport.Replay
	require.NoError(t, r.Reset(req, 10))
	assert.False(t, r.CanReplay())
	assert.Zero(t, body.closed)

	first, err := r.Request()
	require.NoError(t, err)
	assert.Equal(t, payload, readAll(t, first), "nothing of the body is lost")
	assert.Equal(t, 1, body.closed)
	_, err = r.Request()
	assert.ErrorIs(t, err, transport.ErrNotReplayable)
}

func TestReplayKnownLengthOverLimitIsNotRead(t *testing.T) {
	body := &trackedBody{Reader: strings.NewReader(strings.Repeat("a", 100))}
	req, _ := http.NewRequest("POST", "http://x.test/", body)
	req.ContentLength = 100
	var r transport.Replay
	require.NoError(t, r.Reset(req, 10))
	assert.False(t, r.CanReplay())
	first, err := r.Request()
	require.NoError(t, err)
	assert.Same(t, req, first)
	_, err = r.Request()
	assert.ErrorIs(t, err, transport.ErrNotReplayable)
}

func TestReplayNoBody(t *testing.T) {
	for _, body := range []io.Reader{nil, http.NoBody} {
		req, _ := http.NewRequest("GET", "http://x.test/", body)
		var r transport.Replay
		require.NoError(t, r.Reset(req, 0))
		assert.True(t, r.CanReplay())
		for range 2 {
			next, err := r.Request()
			require.NoError(t, err)
			assert.Same(t, req, next)
		}
	}
}

func TestReplayReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	body := &trackedBody{Reader: io.MultiReader(strings.NewReader("abc"), errReader{boom})}
	req, _ := http.NewRequest("POST", "http://x.test/", body)
	var r transport.Replay
	err := r.Reset(req, 0)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, 1, body.closed)
}

// A body shorter or longer than its ContentLength is refused, as net/http
// refuses it, not re-framed to the bytes read and sent.
func TestReplayRefusesABodyOfTheWrongLength(t *testing.T) {
	for _, declared := range []int64{5, 100} {
		body := &trackedBody{Reader: strings.NewReader(`{"model":"m"}`)} // 13 bytes
		req, _ := http.NewRequest("POST", "http://x.test/", body)
		req.ContentLength = declared
		var r transport.Replay
		err := r.Reset(req, 0)
		assert.ErrorContains(t, err, "ContentLength says", "declared %d", declared)
		assert.Equal(t, 1, body.closed)
	}
}

func TestReplayGetBodyError(t *testing.T) {
	boom := errors.New("gone")
	req, _ := http.NewRequest("POST", "http://x.test/", bytes.NewReader([]byte("x")))
	req.GetBody = func() (io.ReadCloser, error) { return nil, boom }
	var r transport.Replay
	require.NoError(t, r.Reset(req, 0))
	_, err := r.Request()
	require.NoError(t, err)
	_, err = r.Request()
	assert.ErrorIs(t, err, boom)
	assert.False(t, r.CanReplay())
}

// A GetBody that gives no body and no error fails as one that errs: the
// attempt is not sent with a nil body its ContentLength belies, which
// net/http refuses with an error that would take the place of the answer
// in hand.
func TestReplayGetBodyWithoutABody(t *testing.T) {
	req, _ := http.NewRequest("POST", "http://x.test/", bytes.NewReader([]byte("x")))
	req.GetBody = func() (io.ReadCloser, error) { return nil, nil }
	var r transport.Replay
	require.NoError(t, r.Reset(req, 0))
	_, err := r.Request()
	require.NoError(t, err)
	next, err := r.Request()
	assert.Error(t, err)
	assert.Nil(t, next)
	assert.False(t, r.CanReplay())
}

func TestReplayCloseBeforeSending(t *testing.T) {
	body := &trackedBody{Reader: strings.NewReader("abc")}
	req, _ := http.NewRequest("POST", "http://x.test/", body)
	req.ContentLength = 3
	var r transport.Replay
	require.NoError(t, r.Reset(req, -1)) // never buffer
	r.Close()
	assert.Equal(t, 1, body.closed, "a request given up before sending still has its body closed")

	body2 := &trackedBody{Reader: strings.NewReader("abc")}
	req2, _ := http.NewRequest("POST", "http://x.test/", body2)
	require.NoError(t, r.Reset(req2, -1))
	_, _ = r.Request()
	r.Close()
	assert.Zero(t, body2.closed, "a body handed to an attempt is the attempt's to close")
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func BenchmarkReplayGetBody(b *testing.B) {
	req, _ := http.NewRequest("POST", "http://x.test/", strings.NewReader(`{"model":"m"}`))
	b.ReportAllocs()
	for b.Loop() {
		var r transport.Replay
		_ = r.Reset(req, 0)
		_, _ = r.Request()
	}
}
