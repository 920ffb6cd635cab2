package transport_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

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
