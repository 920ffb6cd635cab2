package transport_test

import (
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// anthropicStream is a Messages stream: the input in message_start, the
// output so far in message_delta.
const anthropicStream = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n" +
	"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n" +
	"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n" +
	"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

// usageSeen records what a watcher's done was told, and how often.
type usageSeen struct {
	mu    sync.Mutex
	calls int
	u     transport.Usage
	ok    bool
}

func (s *usageSeen) done(u transport.Usage, ok bool) {
	s.mu.Lock()
	s.calls++
	s.u, s.ok = u, ok
	s.mu.Unlock()
}

func (s *usageSeen) get() (int, transport.Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.u, s.ok
}

// failingReader gives r's bytes, then err where r ends.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		err = f.err
	}
	return n, err
}

// A stream whose read fails (a reset, a cut last event) hands the caller
// the failure itself; the usage read until then is reported once, when the
// caller closes the body, and the body is closed once.
func TestWatchUsageStreamThatFails(t *testing.T) {
	reset := errors.New("connection reset by peer")
	cut := anthropicStream[:strings.Index(anthropicStream, `"output_tokens":15`)+len(`"output_tok`)]
	for _, tt := range []struct {
		name string
		body string
		err  error
		want transport.Usage
	}{
		{"reset after message_start", anthropicStream[:strings.Index(anthropicStream, "event: content")], reset, transport.Usage{Input: 25, Output: 1}},
		{"last event cut", cut, io.ErrUnexpectedEOF, transport.Usage{Input: 25, Output: 1}},
		{"openai cut before its usage", "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\ndata: {\"choices\":[],\"us", io.ErrUnexpectedEOF, transport.Usage{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen usageSeen
			src := &trackedBody{Reader: &failingReader{r: strings.NewReader(tt.body), err: tt.err}}
			body := transport.WatchUsage(src, seen.done)
			got, err := io.ReadAll(body)
			assert.Equal(t, tt.err, err, "the read's own failure reaches the caller")
			assert.Equal(t, tt.body, string(got))
			calls, _, _ := seen.get()
			assert.Zero(t, calls, "nothing is reported before the caller closes a body that failed")
			require.NoError(t, body.Close())
			calls, u, ok := seen.get()
			assert.Equal(t, 1, calls)
			assert.Equal(t, tt.want != transport.Usage{}, ok)
			assert.Equal(t, tt.want, u)
			assert.Equal(t, 1, src.closed)
		})
	}
}

// A stream the caller reads in part and closes reports the usage of what
// it read: Anthropic's output so far, OpenAI's nothing (its usage is in the
// last event). One it never reads reports nothing, and one it closes
// twice is reported once.
func TestWatchUsageStreamClosedEarly(t *testing.T) {
	openai := "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\ndata: [DONE]\n\n"
	for _, tt := range []struct {
		name string
		body string
		read int
		want transport.Usage
	}{
		{"anthropic, through message_start", anthropicStream, strings.Index(anthropicStream, "event: content"), transport.Usage{Input: 25, Output: 1}},
		{"anthropic, never read", anthropicStream, 0, transport.Usage{}},
		{"openai, its first event", openai, strings.Index(openai, "data: {\"choices\":[]"), transport.Usage{}},
		{"openai, through its usage, not to the end", openai, strings.Index(openai, "data: [DONE]"), transport.Usage{Input: 5, Output: 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen usageSeen
			src := &trackedBody{Reader: strings.NewReader(tt.body)}
			body := transport.WatchUsage(src, seen.done)
			_, err := io.ReadFull(body, make([]byte, tt.read))
			require.NoError(t, err)
			require.NoError(t, body.Close())
			require.NoError(t, body.Close())
			calls, u, ok := seen.get()
			assert.Equal(t, 1, calls, "reported once")
			assert.Equal(t, tt.want != transport.Usage{}, ok)
			assert.Equal(t, tt.want, u)
			rest, _ := io.ReadAll(src.Reader)
			assert.Len(t, rest, len(tt.body)-tt.read, "the watcher read nothing the caller did not")
		})
	}
}

// blockingBody is a stream whose next event never comes: a Read waits
// until the body is closed, as a network body's does.
type blockingBody struct {
	once   sync.Once
	gone   chan struct{}
	closed atomic.Int32
}

func (b *blockingBody) Read([]byte) (int, error) {
	<-b.gone
	return 0, errors.New("read on closed body")
}

func (b *blockingBody) Close() error {
	b.closed.Add(1)
	b.once.Do(func() { close(b.gone) })
	return nil
}

// A Close while another goroutine waits in Read (a caller giving up on a
// stream) closes the body under the Read, which returns; done is called
// once. Run with -race.
func TestWatchUsageCloseDuringRead(t *testing.T) {
	var seen usageSeen
	src := &blockingBody{gone: make(chan struct{})}
	body := transport.WatchUsage(src, seen.done)
	read := make(chan error)
	go func() {
		_, err := body.Read(make([]byte, 512))
		read <- err
	}()
	require.NoError(t, body.Close())
	assert.Error(t, <-read, "the Read waiting on the stream returns")
	calls, _, ok := seen.get()
	assert.Equal(t, 1, calls)
	assert.False(t, ok)
	assert.Equal(t, int32(1), src.closed.Load())
}

// endless gives n bytes of c, with no line end.
type endless struct {
	n int64
	c byte
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), e.n)]
	for i := range p {
		p[i] = e.c
	}
	e.n -= int64(len(p))
	return len(p), nil
}

// Watching a body costs the same few bytes however long it is: a line of
// 64 MiB, a "usage" object that never closes, usage after megabytes.
func TestWatchUsageHugeBodiesCostNothing(t *testing.T) {
	const huge = 64 << 20
	for _, tt := range []struct {
		name       string
		head, tail string
		want       transport.Usage
	}{
		{"one line", "data: {\"choices\":[{\"delta\":{\"content\":\"", "\"}}]}\n\n", transport.Usage{}},
		{"a usage that never closes", `data: {"usage":{"prompt_tokens":1,"x":"`, "", transport.Usage{}},
		{"usage after megabytes", `{"choices":[{"message":{"content":"`, `"}}],"usage":{"prompt_tokens":3,"completion_tokens":4}}`, transport.Usage{Input: 3, Output: 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen usageSeen
			r := io.MultiReader(strings.NewReader(tt.head), &endless{n: huge, c: 'a'}, strings.NewReader(tt.tail))
			body := transport.WatchUsage(io.NopCloser(r), seen.done)
			buf := make([]byte, 32<<10)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{body}, buf)
			runtime.ReadMemStats(&after)
			require.NoError(t, err)
			require.Equal(t, int64(len(tt.head)+huge+len(tt.tail)), n)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "allocated while reading %d bytes", n)
			calls, u, ok := seen.get()
			assert.Equal(t, 1, calls)
			assert.Equal(t, tt.want != transport.Usage{}, ok)
			assert.Equal(t, tt.want, u)
		})
	}
}

// Counts that are not counts are never taken: a negative, a fraction, a
// string, a number past int64. A count an object lacks keeps what an
// earlier object said.
func TestWatchUsageOddCounts(t *testing.T) {
	for _, tt := range []struct {
		name string
		body string
		want transport.Usage
		ok   bool
	}{
		{"negative", `{"usage":{"prompt_tokens":-5,"completion_tokens":7}}`, transport.Usage{Output: 7}, true},
		{"negative after a count", "data: {\"usage\":{\"input_tokens\":9,\"output_tokens\":2}}\n\ndata: {\"usage\":{\"output_tokens\":-1000000}}\n\n",
			transport.Usage{Input: 9, Output: 2}, true},
		{"all negative", `{"usage":{"prompt_tokens":-5,"completion_tokens":-7}}`, transport.Usage{}, false},
		{"fraction", `{"usage":{"prompt_tokens":5.5,"completion_tokens":7}}`, transport.Usage{}, false},
		{"string", `{"usage":{"prompt_tokens":"5","completion_tokens":7}}`, transport.Usage{}, false},
		{"past int64", `{"usage":{"prompt_tokens":99999999999999999999,"completion_tokens":7}}`, transport.Usage{}, false},
		{"null", `{"usage":{"prompt_tokens":null,"completion_tokens":7}}`, transport.Usage{Output: 7}, true},
		{"missing output", `{"usage":{"prompt_tokens":5}}`, transport.Usage{Input: 5}, true},
		{"only a total", `{"usage":{"total_tokens":12}}`, transport.Usage{}, false},
		{"empty", `{"usage":{}}`, transport.Usage{}, false},
		{"twice, the last wins", `{"usage":{"prompt_tokens":1,"completion_tokens":2},"x":{"usage":{"completion_tokens":3}}}`, transport.Usage{Input: 1, Output: 3}, true},
		{"nested in another usage", `{"usage":{"prompt_tokens":1,"details":{"usage":{"prompt_tokens":50}}}}`, transport.Usage{Input: 1}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var seen usageSeen
			body := transport.WatchUsage(io.NopCloser(strings.NewReader(tt.body)), seen.done)
			_, err := io.ReadAll(body)
			require.NoError(t, err)
			calls, u, ok := seen.get()
			assert.Equal(t, 1, calls)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, u)
		})
	}
}
