package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
)

// bodyBuffer is a request body read into memory so it can be sent again:
// one slice when its length was declared, else pieces that grow to 1 MiB
// each. Pieces, not one slice that doubles, so that reading a body of
// unknown length never holds more than the body and one piece: a
// doubling buffer holds up to twice the body, plus the copy it grows from.
type bodyBuffer struct {
	pieces [][]byte
	size   int64
}

const (
	firstPiece = 4 << 10
	maxPiece   = 1 << 20
)

// readBodyBuffer reads r, which declares length (-1 or 0: unknown), into a
// bodyBuffer of at most limit bytes. When r holds more, it returns what it
// read and tooLarge: the caller sends those bytes and then the rest of r,
// once. The error is a failure reading r, or a body whose length is not
// the declared one.
func readBodyBuffer(r io.Reader, length, limit int64) (buf *bodyBuffer, tooLarge bool, err error) {
	buf = &bodyBuffer{}
	if length > 0 && length <= limit {
		// Declared: one slice, and a byte more to see that it ends there.
		p := make([]byte, length+1)
		n, err := io.ReadFull(r, p[:length])
		switch {
		case err == io.ErrUnexpectedEOF || err == io.EOF:
			// Shorter than declared: net/http refuses it too, and sending
			// the bytes read, re-framed, would hide the caller's bug.
			return nil, false, fmt.Errorf("steady: request body has %d bytes, ContentLength says %d", n, length)
		case err != nil:
			return nil, false, fmt.Errorf("steady: reading request body: %w", err)
		}
		m, err := io.ReadFull(r, p[length:])
		switch {
		case m > 0:
			return nil, false, fmt.Errorf("steady: request body has more than the %d bytes ContentLength says", length)
		case err != io.EOF:
			return nil, false, fmt.Errorf("steady: reading request body: %w", err)
		}
		buf.pieces, buf.size = [][]byte{p[:length]}, length
		return buf, false, nil
	}
	size := int64(firstPiece)
	for {
		if buf.size > limit {
			return buf, true, nil
		}
		want := min(size, limit+1-buf.size)
		p := make([]byte, want)
		n, err := io.ReadFull(r, p)
		if n > 0 {
			buf.pieces = append(buf.pieces, p[:n])
			buf.size += int64(n)
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			if buf.size > limit {
				return buf, true, nil
			}
			if length > 0 && buf.size != length {
				return nil, false, fmt.Errorf("steady: request body has %d bytes, ContentLength says %d", buf.size, length)
			}
			return buf, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("steady: reading request body: %w", err)
		}
		size = min(size*2, maxPiece)
	}
}

// readRequestBody is readBodyBuffer of req's body, read only while req's
// context lasts. A body whose producer stalls (an io.Pipe fed by a
// goroutine that waits) would otherwise hold the request past its
// deadline, where net/http's Transport returns at the deadline: the body
// is closed when the context ends, from another goroutine, which ends the
// read of a pipe, and the error is the context's. A body read in full as
// the context ended is refused too: the request could not be sent.
func readRequestBody(req *http.Request, limit int64) (buf *bodyBuffer, tooLarge bool, err error) {
	ctx := req.Context()
	if ctx.Done() == nil { // a context that never ends
		return readBodyBuffer(req.Body, req.ContentLength, limit)
	}
	body := req.Body
	stop := context.AfterFunc(ctx, func() { _ = body.Close() })
	buf, tooLarge, err = readBodyBuffer(body, req.ContentLength, limit)
	if !stop() {
		return nil, false, fmt.Errorf("steady: reading request body: %w", context.Cause(ctx))
	}
	return buf, tooLarge, err
}

// reader returns a fresh reader over the whole body. One piece is a
// bytes.Reader, whose WriteTo hands a scanner the whole body at once.
func (b *bodyBuffer) reader() io.ReadCloser {
	if len(b.pieces) == 1 {
		return io.NopCloser(bytes.NewReader(b.pieces[0]))
	}
	return &piecesReader{pieces: b.pieces}
}

// getBody is a GetBody for the body.
func (b *bodyBuffer) getBody() (io.ReadCloser, error) { return b.reader(), nil }

// bytes returns the body as one slice when it is in one piece.
func (b *bodyBuffer) bytes() ([]byte, bool) {
	switch len(b.pieces) {
	case 0:
		return []byte{}, true
	case 1:
		return b.pieces[0], true
	}
	return nil, false
}

// writeTo writes every piece to w.
func (b *bodyBuffer) writeTo(w io.Writer) {
	for _, p := range b.pieces {
		_, _ = w.Write(p)
	}
}

// piecesReader reads the pieces of a bodyBuffer in turn.
type piecesReader struct {
	pieces [][]byte
	off    int
}

func (r *piecesReader) Read(p []byte) (int, error) {
	for len(r.pieces) > 0 && r.off == len(r.pieces[0]) {
		r.pieces, r.off = r.pieces[1:], 0
	}
	if len(r.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.pieces[0][r.off:])
	r.off += n
	return n, nil
}

// WriteTo writes what is left, piece by piece, with no copy.
func (r *piecesReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for len(r.pieces) > 0 {
		n, err := w.Write(r.pieces[0][r.off:])
		total += int64(n)
		if err != nil {
			r.off += n
			return total, err
		}
		r.pieces, r.off = r.pieces[1:], 0
	}
	return total, nil
}

func (r *piecesReader) Close() error { return nil }

// onceBody is a body that can be sent once: the bytes read, then the rest
// of the caller's body, which it closes.
type onceBody struct {
	io.Reader
	c io.Closer
}

func (b *onceBody) Close() error { return b.c.Close() }

// newOnceBody sends buf's bytes and then the rest of rc.
func newOnceBody(buf *bodyBuffer, rc io.ReadCloser) *onceBody {
	return &onceBody{Reader: io.MultiReader(buf.reader(), rc), c: rc}
}
