package retry_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// step is one scripted outcome of the inner transport: a response of
// status with header and body, or err.
type step struct {
	status int
	header map[string]string
	body   string
	err    error
}

// script is an inner transport that plays its steps in order, the last one
// repeating, and records what each attempt sent and when.
type script struct {
	mu     sync.Mutex
	steps  []step
	bodies [][]byte       // each attempt's request body
	times  []time.Time    // when each attempt arrived
	resps  []*trackedBody // each response's body
	auth   []string       // each attempt's Authorization header
}

func play(steps ...step) *script { return &script{steps: steps} }

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		_ = req.Body.Close() // as http.Transport does
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.times)
	st := s.steps[min(n, len(s.steps)-1)]
	s.bodies = append(s.bodies, body)
	s.times = append(s.times, time.Now())
	s.auth = append(s.auth, req.Header.Get("Authorization"))
	if st.err != nil {
		s.resps = append(s.resps, nil)
		return nil, st.err
	}
	tb := &trackedBody{r: strings.NewReader(st.body)}
	s.resps = append(s.resps, tb)
	h := http.Header{}
	for k, v := range st.header {
		h.Set(k, v)
	}
	return &http.Response{
		StatusCode: st.status,
		Status:     http.StatusText(st.status),
		Header:     h,
		Body:       tb,
		Request:    req,
	}, nil
}

func (s *script) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.times)
}

// gaps returns the time between consecutive attempts.
func (s *script) gaps() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g []time.Duration
	for i := 1; i < len(s.times); i++ {
		g = append(g, s.times[i].Sub(s.times[i-1]))
	}
	return g
}

func (s *script) body(i int) *trackedBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resps[i]
}

// trackedBody is a response body that records how much was read of it and
// whether it was closed.
type trackedBody struct {
	mu     sync.Mutex
	r      *strings.Reader
	read   int
	reads  int
	closed bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errors.New("read after close")
	}
	b.reads++
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

func (b *trackedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *trackedBody) state() (reads, read int, closed bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads, b.read, b.closed
}

// closeBody is a request body that records whether it was closed.
type closeBody struct {
	io.Reader
	mu     sync.Mutex
	closed bool
}

func (b *closeBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return nil
}

func (b *closeBody) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// maxRand draws the largest value each time, so every jitter is at its top.
func maxRand(n int64) int64 { return n - 1 }

// zeroRand draws 0 each time, so backoff waits vanish.
func zeroRand(int64) int64 { return 0 }

func ok() step { return step{status: 200, body: "ok"} }
