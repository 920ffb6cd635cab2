package conformance

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// errBodyClosed is what a Read after Close returns, as the standard
// transport's bodies do.
var errBodyClosed = errors.New("http: read on closed response body")

// streamBody is an in-memory streamed body: each Read returns at most one
// chunk (one server-sent event), after the stream's interval. It needs no
// goroutine, so nothing can leak when a caller closes it early.
type streamBody struct {
	ctx       context.Context
	chunks    [][]byte
	interval  time.Duration
	truncated bool // end with io.ErrUnexpectedEOF instead of io.EOF
	i, off    int  // the next byte: chunks[i][off]
	closed    chan struct{}
	once      sync.Once
}

func newStreamBody(ctx context.Context, chunks [][]byte, interval time.Duration, truncated bool) *streamBody {
	return &streamBody{ctx: ctx, chunks: chunks, interval: interval, truncated: truncated, closed: make(chan struct{})}
}

// Read returns the rest of the current chunk, or waits for the next one.
// Like a body read from the network, it fails once the request's context
// is done.
func (b *streamBody) Read(p []byte) (int, error) {
	select {
	case <-b.closed:
		return 0, errBodyClosed
	case <-b.ctx.Done():
		return 0, b.ctx.Err()
	default:
	}
	if b.i >= len(b.chunks) {
		if b.truncated {
			return 0, io.ErrUnexpectedEOF
		}
		return 0, io.EOF
	}
	if b.off == 0 && b.i > 0 && b.interval > 0 {
		t := time.NewTimer(b.interval)
		select {
		case <-t.C:
		case <-b.closed:
			t.Stop()
			return 0, errBodyClosed
		case <-b.ctx.Done():
			t.Stop()
			return 0, b.ctx.Err()
		}
	}
	n := copy(p, b.chunks[b.i][b.off:])
	if b.off += n; b.off == len(b.chunks[b.i]) {
		b.i, b.off = b.i+1, 0
	}
	return n, nil
}

// Close ends the stream; a Read waiting for the next chunk returns at once.
func (b *streamBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}
