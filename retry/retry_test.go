package retry_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
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

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

const chatURL = "https://api.example.com/v1/chat/completions"

func newRequest(t *testing.T, ctx context.Context) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, chatURL, strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	return req
}

func wrap(p []retry.Option, inner http.RoundTripper) http.RoundTripper {
	return transport.Chain(inner, retry.New(p...))
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return string(b)
}

func TestRetriedStatuses(t *testing.T) {
	for _, tc := range []struct {
		status  int
		retried bool
	}{
		{429, true}, {408, true}, {409, true}, {500, true}, {502, true},
		{503, true}, {504, true}, {529, true},
		{400, false}, {401, false}, {402, false}, {403, false}, {404, false},
		{422, false}, {501, false}, {200, false}, {201, false},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: tc.status, body: "first"}, ok())
				resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, t.Context()))
				require.NoError(t, err)
				if tc.retried {
					assert.Equal(t, 2, inner.attempts())
					assert.Equal(t, 200, resp.StatusCode)
					assert.Equal(t, "ok", readAll(t, resp))
				} else {
					assert.Equal(t, 1, inner.attempts())
					assert.Equal(t, tc.status, resp.StatusCode)
					assert.Equal(t, "first", readAll(t, resp))
				}
			})
		})
	}
}

func TestShouldRetryHeader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		value   string
		retried bool
	}{
		{"false vetoes a 503", 503, "false", false},
		{"false vetoes a 429", 429, "False", false},
		{"true forces a 400", 400, "true", true},
		{"true forces a 404", 404, " TRUE ", true},
		{"junk is ignored on a 503", 503, "maybe", true},
		{"junk is ignored on a 400", 400, "maybe", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: tc.status, header: map[string]string{"X-Should-Retry": tc.value}}, ok())
				resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, t.Context()))
				require.NoError(t, err)
				defer resp.Body.Close()
				if tc.retried {
					assert.Equal(t, 2, inner.attempts())
					assert.Equal(t, 200, resp.StatusCode)
				} else {
					assert.Equal(t, 1, inner.attempts())
					assert.Equal(t, tc.status, resp.StatusCode)
				}
			})
		})
	}
}

// A success is the work done, and billed: sending it again would do it
// twice. x-should-retry counts only on a failed answer, as the providers'
// Python and TypeScript SDKs read it.
func TestASuccessIsNotRetriedWhateverXShouldRetrySays(t *testing.T) {
	for _, status := range []int{200, 201, 204, 304} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: status, header: map[string]string{"X-Should-Retry": "true"}, body: "first"}, ok())
				var rec conformance.EventRecorder
				opts := []retry.Option{retry.WithRand(zeroRand), retry.WithIdempotent(), retry.WithEvents(rec.Record)}
				resp, err := wrap(opts, inner).RoundTrip(newRequest(t, t.Context()))
				require.NoError(t, err)
				assert.Equal(t, 1, inner.attempts(), "sent once")
				assert.Equal(t, status, resp.StatusCode)
				assert.Equal(t, "first", readAll(t, resp), "the answer reaches the caller whole")
				events := rec.Events()
				require.Len(t, events, 1)
				assert.Equal(t, transport.EventDone, events[0].Kind)

				resp = &http.Response{StatusCode: status, Header: http.Header{"X-Should-Retry": {"true"}}}
				assert.False(t, retry.ShouldRetry(resp, nil))
			})
		})
	}
}

// tlsTimeout mimics net/http's unexported TLS handshake timeout error.
type tlsTimeout struct{}

func (tlsTimeout) Error() string   { return "net/http: TLS handshake timeout" }
func (tlsTimeout) Timeout() bool   { return true }
func (tlsTimeout) Temporary() bool { return true }

func TestRetriedTransportErrors(t *testing.T) {
	dial := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	// retried: ShouldRetry's class; written: the failure may come after
	// the request was written, so a POST without an Idempotency-Key is not
	// sent again (it may have been processed, and billed).
	for _, tc := range []struct {
		name             string
		err              error
		retried, written bool
	}{
		{"connection refused", dial(os.NewSyscallError("connect", syscall.ECONNREFUSED)), true, false},
		{"connection reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, true, true},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, true, true},
		{"EOF", io.EOF, true, true},
		{"wrapped EOF", fmt.Errorf("reading response: %w", io.EOF), true, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true, true},
		{"TLS handshake timeout", tlsTimeout{}, true, false},
		{"server closed idle connection", errors.New("http: server closed idle connection"), true, false},
		{"dial: no such host", dial(&net.DNSError{Err: "no such host", Name: "api.example.com", IsNotFound: true}), true, false},
		{"dial timeout", dial(errors.New("i/o timeout")), true, false},
		{"read timeout after sending", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("i/o timeout")}, false, true},
		{"unknown error", errors.New("boom"), false, true},
		{"certificate", x509.UnknownAuthorityError{}, false, false},
		{"context canceled", context.Canceled, false, false},
		{"deadline exceeded", fmt.Errorf("dial: %w", context.DeadlineExceeded), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.retried, retry.ShouldRetry(nil, tc.err), "ShouldRetry")
			for _, req := range []struct {
				name    string
				key     bool // an Idempotency-Key header
				retried bool
			}{
				{"POST", false, tc.retried && !tc.written},
				{"POST with Idempotency-Key", true, tc.retried},
			} {
				t.Run(req.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						inner := play(step{err: tc.err}, ok())
						r := newRequest(t, t.Context())
						if req.key {
							r.Header.Set("Idempotency-Key", "k-1")
						}
						resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(r)
						if req.retried {
							require.NoError(t, err)
							assert.Equal(t, 200, resp.StatusCode)
							assert.Equal(t, 2, inner.attempts())
							resp.Body.Close()
						} else {
							assert.Nil(t, resp)
							assert.ErrorIs(t, err, tc.err)
							assert.Equal(t, 1, inner.attempts())
						}
					})
				})
			}
		})
	}
}

// A GET is idempotent by net/http's rule: a reset is retried, and so is
// any request of a policy made WithIdempotent.
func TestIdempotentRequestsAreRetriedAfterAReset(t *testing.T) {
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{err: reset}, ok())
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://api.together.xyz/v1/models", nil)
		require.NoError(t, err)
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, inner.attempts())
	})
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{err: reset}, ok())
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand), retry.WithIdempotent()}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, inner.attempts())
	})
}

// A failure reading the caller's own body is the caller's: the transport
// returns it (here as an unexpected EOF, which a connection failure also
// is), and it is not retried even for a request that may be sent twice.
func TestAFailureReadingTheCallersBodyIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var attempts int
		inner := transport.Func(func(r *http.Request) (*http.Response, error) {
			attempts++
			_, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			return nil, fmt.Errorf("writing the request: %w", err)
		})
		body := &failingBody{}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, chatURL, body)
		require.NoError(t, err)
		req.GetBody = func() (io.ReadCloser, error) { return &failingBody{}, nil }
		req.Header.Set("Idempotency-Key", "k-1")
		_, err = wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, 1, attempts)
	})
}

// failingBody fails its first read as a broken upstream would.
type failingBody struct{ closed bool }

func (b *failingBody) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
func (b *failingBody) Close() error             { b.closed = true; return nil }

func TestShouldRetryOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// An override that also retries 404s (a model still being loaded, say).
		p := []retry.Option{retry.WithRand(zeroRand),
			retry.WithShouldRetry(func(resp *http.Response, err error) bool {
				return retry.ShouldRetry(resp, err) || (resp != nil && resp.StatusCode == 404)
			})}
		inner := play(step{status: 404}, step{status: 503}, ok())
		resp, err := wrap(p, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 3, inner.attempts())
	})
}

func TestNeverRetriesACancelledContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			cancel() // the caller gives up while the attempt is in flight
			_ = req.Body.Close()
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		})
		calls := 0
		counted := transport.Func(func(req *http.Request) (*http.Response, error) { calls++; return inner(req) })
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, counted).RoundTrip(newRequest(t, ctx))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.Equal(t, 1, calls)
	})
}

func TestNeverRetriesABodyThatCannotBeReplayed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503, body: "busy"}, ok())
		body := &closeBody{Reader: strings.NewReader("a body larger than the limit")}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, chatURL, body)
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand), retry.WithReplayLimit(8)}, inner).RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "busy", readAll(t, resp))
		assert.Equal(t, 1, inner.attempts())
		assert.Equal(t, "a body larger than the limit", string(inner.bodies[0]), "sent once, whole")
		assert.True(t, body.isClosed())
	})
}

func TestServerDirectedWaits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header map[string]string
		asked  time.Duration
		jitter time.Duration // the most jitter allowed: 10%, within [50ms, 1s]
	}{
		{"retry-after-ms", 429, map[string]string{"Retry-After-Ms": "1500"}, 1500 * time.Millisecond, 150 * time.Millisecond},
		{"retry-after-ms wins over Retry-After", 503, map[string]string{"Retry-After-Ms": "200", "Retry-After": "30"}, 200 * time.Millisecond, 50 * time.Millisecond},
		{"Retry-After seconds", 503, map[string]string{"Retry-After": "2"}, 2 * time.Second, 200 * time.Millisecond},
		{"Retry-After fraction", 429, map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond, 50 * time.Millisecond},
		{"Retry-After date", 429, map[string]string{"Retry-After": "Sat, 01 Jan 2000 00:00:20 GMT"}, 20 * time.Second, time.Second},
		{"Retry-After zero", 429, map[string]string{"Retry-After": "0"}, 0, 50 * time.Millisecond},
		{"x-ratelimit-reset alone on 429", 429, map[string]string{"X-Ratelimit-Reset": "2"}, 2 * time.Second, 200 * time.Millisecond},
		{"x-ratelimit-reset on 429", 429, map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "3"}, 3 * time.Second, 300 * time.Millisecond},
		{"OpenAI reset on 429", 429, map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "6m0s"}, 6 * time.Minute, time.Second},
		{"at the cap", 503, map[string]string{"Retry-After": "60"}, time.Minute, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				name  string
				rand  func(int64) int64
				extra time.Duration
			}{{"least jitter", zeroRand, 0}, {"most jitter", maxRand, tc.jitter - 1}} {
				t.Run(r.name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						// synctest's clock starts at 2000-01-01 00:00:00 UTC.
						require.Equal(t, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().UTC())
						var rec conformance.EventRecorder
						p := []retry.Option{retry.WithMaxServerWait(6 * time.Minute), retry.WithRand(r.rand), retry.WithEvents(rec.Record)}
						inner := play(step{status: tc.status, header: tc.header}, ok())
						resp, err := wrap(p, inner).RoundTrip(newRequest(t, t.Context()))
						require.NoError(t, err)
						resp.Body.Close()
						assert.Equal(t, 200, resp.StatusCode)
						assert.Equal(t, []time.Duration{tc.asked + r.extra}, inner.gaps())
						events := rec.Events()
						require.Len(t, events, 2)
						assert.Equal(t, retry.ReasonServer, events[0].Reason)
						assert.Equal(t, tc.asked+r.extra, events[0].Wait)
					})
				})
			}
		})
	}
}

func TestServerWaitOverTheCapReturnsTheResponseAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		policy []retry.Option
		header map[string]string
	}{
		{"default cap 60s", []retry.Option{}, map[string]string{"Retry-After": "61"}},
		{"an hour", []retry.Option{}, map[string]string{"Retry-After": "3600"}},
		{"reset over the cap", []retry.Option{}, map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "90"}},
		{"custom cap", []retry.Option{retry.WithMaxServerWait(time.Second)}, map[string]string{"Retry-After-Ms": "1001"}},
		{"negative cap refuses any wait", []retry.Option{retry.WithMaxServerWait(0)}, map[string]string{"Retry-After": "1"}},
		// Waits too long to write as a Duration, or in 32 characters,
		// are as long as any: the answer comes back, it is not retried as
		// if the server had asked nothing.
		{"reset of 3,000,000 hours", []retry.Option{}, map[string]string{"X-Ratelimit-Remaining-Requests": "0", "X-Ratelimit-Reset-Requests": "3000000h"}},
		{"Retry-After of 40 digits", []retry.Option{}, map[string]string{"Retry-After": strings.Repeat("9", 40)}},
		{"retry-after-ms of 40 digits", []retry.Option{}, map[string]string{"Retry-After-Ms": strings.Repeat("9", 40)}},
		{"reset of 40 digits", []retry.Option{}, map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": strings.Repeat("9", 40)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: 429, header: tc.header, body: "slow down"}, ok())
				start := time.Now()
				resp, err := wrap(tc.policy, inner).RoundTrip(newRequest(t, t.Context()))
				require.NoError(t, err)
				assert.Zero(t, time.Since(start), "no sleep")
				assert.Equal(t, 429, resp.StatusCode)
				assert.Equal(t, "slow down", readAll(t, resp), "body intact")
				assert.Equal(t, 1, inner.attempts())
			})
		})
	}
}

func TestBackoffIsExponentialWithFullJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		p := []retry.Option{retry.WithMaxRetries(7), retry.WithRand(maxRand), retry.WithoutBudget()}
		resp, err := wrap(p, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		resp.Body.Close()
		ms := time.Millisecond
		assert.Equal(t, []time.Duration{500*ms - 1, 1000*ms - 1, 2000*ms - 1, 4000*ms - 1, 8000*ms - 1, 8000*ms - 1, 8000*ms - 1},
			inner.gaps(), "at the top of the jitter: base·2^n, capped at 8s")
	})
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []time.Duration{0, 0, 0, 0}, inner.gaps(), "full jitter reaches down to zero")
	})
	synctest.Test(t, func(t *testing.T) {
		// The jitter spans the whole range: what Rand is asked for is the cap.
		var asked []int64
		p := []retry.Option{retry.WithBackoff(100*time.Millisecond, 300*time.Millisecond),
			retry.WithRand(func(n int64) int64 { asked = append(asked, n); return n / 2 })}
		inner := play(step{status: 500})
		resp, err := wrap(p, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []int64{100e6, 200e6, 300e6, 300e6}, asked)
		assert.Equal(t, []time.Duration{50e6, 100e6, 150e6, 150e6}, inner.gaps())
	})
}

func TestDefaultPolicyMakesFiveAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503})
		start := time.Now()
		resp, err := wrap([]retry.Option{}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 5, inner.attempts())
		assert.Less(t, time.Since(start), (500+1000+2000+4000)*time.Millisecond, "backoff of 500 ms doubling, jittered below")
	})
}

func TestZeroMaxRetriesMeansNoRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		inner := play(step{status: 503, body: "busy"}, ok())
		resp, err := wrap([]retry.Option{retry.WithMaxRetries(0)}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "busy", readAll(t, resp))
		assert.Equal(t, 1, inner.attempts())
	})
}

func TestAWaitPastTheDeadlineIsNotStarted(t *testing.T) {
	t.Run("the last response is returned, body intact", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Second)
			defer cancel()
			inner := play(step{status: 429, header: map[string]string{"Retry-After": "2"}, body: "slow down"}, ok())
			start := time.Now()
			resp, err := wrap([]retry.Option{}, inner).RoundTrip(newRequest(t, ctx))
			require.NoError(t, err)
			assert.Zero(t, time.Since(start))
			assert.Equal(t, 429, resp.StatusCode)
			reads, _, closed := inner.body(0).state()
			assert.Zero(t, reads, "not drained")
			assert.False(t, closed)
			assert.Equal(t, "slow down", readAll(t, resp))
			assert.Equal(t, 1, inner.attempts())
		})
	})
	t.Run("a backoff past the deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			inner := play(step{status: 503, body: "busy"})
			start := time.Now()
			// Waits of 500ms and 1s fit (1.5 s), the third (2 s) does not.
			resp, err := wrap([]retry.Option{retry.WithRand(maxRand)}, inner).RoundTrip(newRequest(t, ctx))
			require.NoError(t, err)
			assert.Equal(t, 1500*time.Millisecond-2, time.Since(start))
			assert.Equal(t, 3, inner.attempts())
			assert.Equal(t, "busy", readAll(t, resp))
		})
	})
	t.Run("no response: an error that is DeadlineExceeded", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
			inner := play(step{err: refused})
			start := time.Now()
			resp, err := wrap([]retry.Option{retry.WithRand(maxRand)}, inner).RoundTrip(newRequest(t, ctx))
			assert.Nil(t, resp)
			assert.Zero(t, time.Since(start))
			assert.ErrorIs(t, err, context.DeadlineExceeded)
			assert.ErrorIs(t, err, transport.ErrDeadline)
			assert.ErrorIs(t, err, syscall.ECONNREFUSED, "the cause is kept")
			assert.Equal(t, 1, inner.attempts())
		})
	})
	t.Run("jitter is trimmed, the server's wait kept", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 1050*time.Millisecond)
			defer cancel()
			inner := play(step{status: 429, header: map[string]string{"Retry-After": "1"}}, ok())
			resp, err := wrap([]retry.Option{retry.WithRand(maxRand)}, inner).RoundTrip(newRequest(t, ctx))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, []time.Duration{1050*time.Millisecond - 1}, inner.gaps(), "1 s asked, all but 1 ns of the 50 ms left fit")
		})
	})
	t.Run("a trimmed wait still fits when the answer takes time to drain", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 1050*time.Millisecond)
			defer cancel()
			var times []time.Time
			inner := transport.Func(func(req *http.Request) (*http.Response, error) {
				_, _ = io.Copy(io.Discard, req.Body)
				_ = req.Body.Close()
				times = append(times, time.Now())
				if len(times) == 1 {
					h := http.Header{"Retry-After": {"1"}}
					return &http.Response{StatusCode: 429, Header: h, Request: req,
						Body: io.NopCloser(&slowReader{r: strings.NewReader("slow down"), each: time.Millisecond})}, nil
				}
				return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			})
			resp, err := wrap([]retry.Option{retry.WithRand(maxRand)}, inner).RoundTrip(newRequest(t, ctx))
			require.NoError(t, err, "the wait that was found to fit is made")
			resp.Body.Close()
			assert.Equal(t, 200, resp.StatusCode)
			require.Len(t, times, 2)
			assert.Equal(t, 1050*time.Millisecond-1, times[1].Sub(times[0]), "the wait counts from the answer, draining included")
		})
	})
}

// slowReader is a body that arrives slowly: each read takes each.
type slowReader struct {
	r    io.Reader
	each time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.each)
	return s.r.Read(p)
}

func TestCancellationDuringAWaitReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		inner := play(step{status: 503, header: map[string]string{"Retry-After": "30"}})
		go func() {
			time.Sleep(300 * time.Millisecond)
			cancel()
		}()
		start := time.Now()
		resp, err := wrap([]retry.Option{}, inner).RoundTrip(newRequest(t, ctx))
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 300*time.Millisecond, time.Since(start), "returned at the instant of cancellation")
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 1, re.Attempts)
		assert.Equal(t, 503, re.Status)
		assert.Equal(t, "steady/retry: 1 attempt (last status 503): context canceled", err.Error())
		_, _, closed := inner.body(0).state()
		assert.True(t, closed, "the discarded response was closed")
	})
}

func TestGivingUpReturnsTheLastResponseUnchanged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var steps []step
		for i := 1; i <= 5; i++ {
			steps = append(steps, step{status: 503, body: fmt.Sprintf("overloaded #%d", i),
				header: map[string]string{"X-Request-Id": fmt.Sprint(i)}})
		}
		inner := play(steps...)
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		assert.Equal(t, 5, inner.attempts())
		assert.Equal(t, 503, resp.StatusCode)
		assert.Equal(t, "5", resp.Header.Get("X-Request-Id"))
		assert.Same(t, inner.body(4), resp.Body, "the very body the server sent")
		reads, _, closed := inner.body(4).state()
		assert.Zero(t, reads)
		assert.False(t, closed)
		assert.Equal(t, "overloaded #5", readAll(t, resp))
	})
}

func TestGivingUpWrapsTransportErrorsWithTheAttemptCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		inner := play(step{err: reset})
		req := newRequest(t, t.Context())
		req.Header.Set("Idempotency-Key", "k-1") // a reset is retried
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
		assert.Nil(t, resp)
		require.Error(t, err)
		assert.Equal(t, "steady/retry: 5 attempts: read tcp: read: connection reset by peer", err.Error())
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		var op *net.OpError
		assert.ErrorAs(t, err, &op)
		var re *retry.Error
		require.ErrorAs(t, err, &re)
		assert.Equal(t, 5, re.Attempts)
		assert.Equal(t, 5, inner.attempts())
	})
}

// A discarded answer whose body never comes (its server sent the head
// and stalls) does not hold the retry: the body is closed, and the next
// attempt made after the wait the server asked for.
func TestADiscardedAnswerThatStallsDoesNotHoldTheRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		stalled := &stalledBody{closed: make(chan struct{})}
		attempts := 0
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			_, _ = io.Copy(io.Discard, req.Body)
			_ = req.Body.Close()
			attempts++
			if attempts == 1 {
				return &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"1"}}, Body: stalled, Request: req}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
		})
		start := time.Now()
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, ctx))
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 2, attempts)
		assert.Equal(t, time.Second, time.Since(start), "sent again after the second asked for")
		select {
		case <-stalled.closed:
		default:
			t.Error("the stalled body was not closed")
		}
	})
}

// A request that ends (its deadline, its cancellation) while the body of
// a discarded answer stalls returns when it ends, not when DrainWait has
// passed: the body, not net/http's (nothing else closes it at the
// request's end), is closed then.
func TestARequestThatEndsWhileItsDiscardedAnswerStallsReturnsAtItsEnd(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(t *testing.T) context.Context
		want error
	}{
		{"deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, context.DeadlineExceeded},
		{"canceled", func(t *testing.T) context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			t.Cleanup(cancel)
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				stalled := &stalledBody{closed: make(chan struct{})}
				attempts := 0
				inner := transport.Func(func(req *http.Request) (*http.Response, error) {
					_, _ = io.Copy(io.Discard, req.Body)
					_ = req.Body.Close()
					attempts++
					if attempts == 1 { // a wait that fits the deadline
						h := http.Header{"Retry-After-Ms": {"50"}}
						return &http.Response{StatusCode: 503, Header: h, Body: stalled, Request: req}, nil
					}
					return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
				})
				start := time.Now()
				resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, tc.ctx(t)))
				assert.Nil(t, resp)
				assert.ErrorIs(t, err, tc.want)
				assert.Equal(t, 100*time.Millisecond, time.Since(start), "returned at the request's end")
				assert.Equal(t, 1, attempts)
				select {
				case <-stalled.closed:
				default:
					t.Error("the stalled body was not closed")
				}
			})
		})
	}
}

// stalledBody is the body of an answer whose server sent its head and
// then nothing: a read blocks until the body is closed.
type stalledBody struct {
	once   sync.Once
	closed chan struct{}
}

func (b *stalledBody) Read([]byte) (int, error) {
	<-b.closed
	return 0, io.ErrUnexpectedEOF
}

func (b *stalledBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func TestDiscardedResponsesAreDrainedAndClosedBeforeTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		big := strings.Repeat("x", 100<<10) // more than transport.DrainLimit
		inner := play(step{status: 503, body: "small"}, step{status: 429, body: big}, ok())
		rt := wrap([]retry.Option{retry.WithRand(maxRand)}, inner)
		done := make(chan *http.Response)
		go func() {
			resp, err := rt.RoundTrip(newRequest(t, t.Context()))
			assert.NoError(t, err)
			done <- resp
		}()
		synctest.Wait() // blocked in the first wait
		require.Equal(t, 1, inner.attempts())
		_, read, closed := inner.body(0).state()
		assert.True(t, closed, "closed before the wait")
		assert.Equal(t, len("small"), read, "drained before the wait")

		time.Sleep(500 * time.Millisecond)
		synctest.Wait() // in the second wait
		require.Equal(t, 2, inner.attempts())
		_, read, closed = inner.body(1).state()
		assert.True(t, closed)
		assert.Equal(t, transport.DrainLimit, read, "drained up to the limit only")

		resp := <-done
		assert.Equal(t, 200, resp.StatusCode)
		resp.Body.Close()
	})
}

func TestBodiesAreReplayedByteIdentical(t *testing.T) {
	payload := `{"model":"m","messages":[{"role":"user","content":"héllo"}]}`
	for _, tc := range []struct {
		name string
		req  func(ctx context.Context) *http.Request
		want string
	}{
		{"with GetBody", func(ctx context.Context) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, chatURL, bytes.NewReader([]byte(payload)))
			return r
		}, payload},
		{"plain reader without GetBody", func(ctx context.Context) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, chatURL, io.MultiReader(strings.NewReader(payload[:10]), strings.NewReader(payload[10:])))
			return r
		}, payload},
		{"no body", func(ctx context.Context) *http.Request {
			r, _ := http.NewRequestWithContext(ctx, http.MethodGet, chatURL, nil)
			return r
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				req := tc.req(t.Context())
				if tc.name == "plain reader without GetBody" {
					require.Nil(t, req.GetBody)
				}
				before := *req
				refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
				inner := play(step{status: 503}, step{err: refused}, step{status: 429}, ok())
				resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, 4, inner.attempts())
				for i, b := range inner.bodies {
					assert.Equal(t, tc.want, string(b), "attempt %d", i+1)
				}
				assert.Equal(t, before.Body, req.Body, "the caller's request is not modified")
				assert.Equal(t, before.ContentLength, req.ContentLength)
				assert.Equal(t, before.Header, req.Header)
			})
		})
	}
}

// streamBody stands for a server-sent events stream: it records every read.
type streamBody struct {
	mu    sync.Mutex
	reads int
}

func (s *streamBody) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return copy(p, "data: {}\n\n"), nil
}
func (s *streamBody) Close() error { return nil }

func TestReturnedStreamingBodiesAreNotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stream := &streamBody{}
		n := 0
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			n++
			if n == 1 {
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: stream}, nil
		})
		resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(newRequest(t, t.Context()))
		require.NoError(t, err)
		assert.Same(t, stream, resp.Body)
		stream.mu.Lock()
		assert.Zero(t, stream.reads)
		stream.mu.Unlock()
		resp.Body.Close()
	})
}

func TestEventsNeverSeeTheAuthorizationHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec conformance.EventRecorder
		p := []retry.Option{retry.WithRand(maxRand), retry.WithEvents(rec.Record)}
		refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
		inner := play(step{status: 429, header: map[string]string{"Retry-After": "1"}}, step{err: refused}, ok())
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
			"https://user:pw-secret@api.example.com/v1/embeddings?key=query-secret", strings.NewReader("{}"))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer sk-secret")
		resp, err := wrap(p, inner).RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, []string{"Bearer sk-secret", "Bearer sk-secret", "Bearer sk-secret"}, inner.auth, "the header is still sent")

		events := rec.Events()
		require.Len(t, events, 3)
		assert.Equal(t, transport.Event{Kind: transport.EventRetry, Endpoint: transport.EndpointEmbeddings,
			Attempt: 1, Wait: 1100*time.Millisecond - 1, Status: 429, Reason: retry.ReasonServer}, events[0])
		assert.Equal(t, 2, events[1].Attempt)
		assert.Equal(t, time.Second-1, events[1].Wait)
		assert.Zero(t, events[1].Status)
		assert.ErrorIs(t, events[1].Err, syscall.ECONNREFUSED)
		for _, e := range events {
			assert.NotContains(t, fmt.Sprintf("%+v %#v", e, e), "secret")
		}
	})
}

func TestRequestBodyIsClosedOnEveryPath(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, tc := range []struct {
		name      string
		cancelled bool
		steps     []step
		attempts  int
	}{
		{"context already cancelled: nothing sent", true, []step{ok()}, 0},
		{"success", false, []step{ok()}, 1},
		{"retried then success", false, []step{{status: 503}, ok()}, 2},
		{"gave up on a response", false, []step{{status: 503}}, 5},
		{"gave up on an error", false, []step{{err: refused}}, 5},
		{"not retryable", false, []step{{status: 400}}, 1},
	} {
		for _, withGetBody := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/GetBody=%v", tc.name, withGetBody), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					if tc.cancelled {
						cancel()
					}
					bodies := []*closeBody{{Reader: strings.NewReader("payload")}}
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, chatURL, bodies[0])
					require.NoError(t, err)
					if withGetBody {
						req.GetBody = func() (io.ReadCloser, error) {
							b := &closeBody{Reader: strings.NewReader("payload")}
							bodies = append(bodies, b)
							return b, nil
						}
					}
					inner := play(tc.steps...)
					resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
					if resp != nil {
						resp.Body.Close()
					}
					if tc.cancelled {
						assert.ErrorIs(t, err, context.Canceled)
						var re *retry.Error
						require.ErrorAs(t, err, &re)
						assert.Zero(t, re.Attempts)
					}
					for i, b := range bodies {
						assert.True(t, b.isClosed(), "body %d", i)
					}
					assert.Equal(t, tc.attempts, inner.attempts())
				})
			})
		}
	}
	t.Run("body read fails", func(t *testing.T) {
		body := &closeBody{Reader: io.MultiReader(strings.NewReader("part"), iotestErrReader{})}
		req, err := http.NewRequest(http.MethodPost, chatURL, body)
		require.NoError(t, err)
		inner := play(ok())
		resp, err := wrap([]retry.Option{}, inner).RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorContains(t, err, "disk on fire")
		assert.True(t, body.isClosed())
		assert.Zero(t, inner.attempts())
	})
	t.Run("GetBody fails on the retry", func(t *testing.T) {
		// The next attempt's body cannot be had: the caller gets the
		// answer in hand, unread, rather than an error about the body.
		synctest.Test(t, func(t *testing.T) {
			body := &closeBody{Reader: strings.NewReader("payload")}
			req, err := http.NewRequest(http.MethodPost, chatURL, body)
			require.NoError(t, err)
			req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
			inner := play(step{status: 503, body: "busy"})
			resp, err := wrap([]retry.Option{retry.WithRand(zeroRand)}, inner).RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, 503, resp.StatusCode)
			assert.Equal(t, "busy", readAll(t, resp), "the answer is whole")
			assert.True(t, body.isClosed())
			assert.Equal(t, 1, inner.attempts())
		})
	})
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestConcurrentUse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		seen := map[string]int{}
		inner := transport.Func(func(req *http.Request) (*http.Response, error) {
			b, _ := io.ReadAll(req.Body)
			req.Body.Close()
			mu.Lock()
			seen[string(b)]++
			n := seen[string(b)]
			mu.Unlock()
			if n < 3 {
				return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody}, nil
			}
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(string(b)))}, nil
		})
		rt := wrap([]retry.Option{retry.WithoutBudget()}, inner)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				body := fmt.Sprintf("request %d", i)
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, chatURL, strings.NewReader(body))
				resp, err := rt.RoundTrip(req)
				if assert.NoError(t, err) {
					assert.Equal(t, 200, resp.StatusCode)
					assert.Equal(t, body, readAll(t, resp))
				}
			})
		}
		wg.Wait()
		assert.Len(t, seen, 50)
		for k, n := range seen {
			assert.Equal(t, 3, n, k)
		}
	})
}

func TestSeededRandMakesWaitsRepeatable(t *testing.T) {
	run := func() []time.Duration {
		var gaps []time.Duration
		synctest.Test(t, func(t *testing.T) {
			src := mrand.New(mrand.NewPCG(1, 2))
			inner := play(step{status: 502})
			resp, err := wrap([]retry.Option{retry.WithMaxRetries(6), retry.WithRand(src.Int64N)}, inner).RoundTrip(newRequest(t, t.Context()))
			require.NoError(t, err)
			resp.Body.Close()
			gaps = inner.gaps()
		})
		return gaps
	}
	first := run()
	assert.Equal(t, first, run(), "same seed, same waits")
	require.Len(t, first, 6)
	caps := []time.Duration{500e6, 1e9, 2e9, 4e9, 8e9, 8e9}
	for i, g := range first {
		assert.GreaterOrEqual(t, g, time.Duration(0))
		assert.Less(t, g, caps[i], "retry %d", i+1)
	}
}

// TestMaybeProcessedStatusesAreNotResent: on a route whose POST creates
// what a second send creates again (a fine-tune, a batch), an answer whose
// status says the server may have acted on it is returned after one send,
// with a give-up that says why; what the server vouches for (x-should-
// retry: true), what it can deduplicate (an Idempotency-Key), a GET, a
// policy declared idempotent and every status not named are retried as
// before.
func TestMaybeProcessedStatusesAreNotResent(t *testing.T) {
	get := func(t *testing.T) *http.Request {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, chatURL, nil)
		require.NoError(t, err)
		return req
	}
	keyed := func(t *testing.T) *http.Request {
		req := newRequest(t, t.Context())
		req.Header.Set("Idempotency-Key", "job-1")
		return req
	}
	for _, tc := range []struct {
		name    string
		first   step
		req     func(*testing.T) *http.Request
		extra   []retry.Option
		retried bool
	}{
		{"POST 500", step{status: 500}, nil, nil, false},
		{"POST 502", step{status: 502}, nil, nil, false},
		{"POST 504", step{status: 504}, nil, nil, false},
		{"POST 503 is not named", step{status: 503}, nil, nil, true},
		{"POST 429 is not named", step{status: 429}, nil, nil, true},
		{"POST 500 the server vouches for", step{status: 500, header: map[string]string{"X-Should-Retry": "true"}}, nil, nil, true},
		{"POST 500 with an Idempotency-Key", step{status: 500}, keyed, nil, true},
		{"GET 500", step{status: 500}, get, nil, true},
		{"POST 500 declared idempotent", step{status: 500}, nil, []retry.Option{retry.WithIdempotent()}, true},
		{"POST 500, a later option names none", step{status: 500}, nil, []retry.Option{retry.WithMaybeProcessed()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tc.first.body = "first"
				inner := play(tc.first, ok())
				var rec conformance.EventRecorder
				opts := append([]retry.Option{retry.WithRand(zeroRand), retry.WithEvents(rec.Record),
					retry.WithMaybeProcessed(500, 502, 504)}, tc.extra...)
				req := newRequest(t, t.Context())
				if tc.req != nil {
					req = tc.req(t)
				}
				resp, err := wrap(opts, inner).RoundTrip(req)
				require.NoError(t, err)
				events := rec.Events()
				if tc.retried {
					assert.Equal(t, 2, inner.attempts())
					assert.Equal(t, 200, resp.StatusCode)
					assert.Equal(t, "ok", readAll(t, resp))
					return
				}
				assert.Equal(t, 1, inner.attempts(), "sent once")
				assert.Equal(t, tc.first.status, resp.StatusCode)
				assert.Equal(t, "first", readAll(t, resp), "the answer reaches the caller whole")
				require.Len(t, events, 2)
				assert.Equal(t, transport.EventGaveUp, events[0].Kind)
				assert.Equal(t, retry.ReasonNotIdempotent, events[0].Reason, "the give-up says why")
			})
		})
	}
}

// http.Client wraps a transport's error in a url.Error, whose Timeout asks
// the error it wraps, without unwrapping it. A request given up on for its
// deadline, or whose last attempt ran out of time, is a timeout there, as
// it is without the decorator; one that failed otherwise is not.
func TestAnErrorOfARequestOutOfTimeIsATimeout(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	for _, tc := range []struct {
		name    string
		err     error
		timeout bool
	}{
		{"the next wait would outlast the deadline", refused, true},
		{"the last attempt ran out of time", context.DeadlineExceeded, true},
		{"the connection was reset", reset, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
				defer cancel()
				client := &http.Client{Transport: wrap([]retry.Option{retry.WithRand(maxRand)}, play(step{err: tc.err}))}
				_, err := client.Do(newRequest(t, ctx))
				var re *retry.Error
				require.ErrorAs(t, err, &re)
				var ue interface{ Timeout() bool }
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, tc.timeout, ue.Timeout(), "%v", err)
			})
		})
	}
}
