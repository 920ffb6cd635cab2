package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nvJitter is the retry loop's random draw in these tests: a jitter of
// 0.25 × 2 s = 500 ms.
func nvJitter() float64 { return 0.25 }

// nvChat sends one chat request for model through rt with ctx.
func nvChat(ctx context.Context, rt http.RoundTripper, model string) (*http.Response, error) {
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, model)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ScenarioBaseURL+"/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

func nvClose(resp *http.Response) {
	if resp != nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}

func TestNaiveLimiterStartsFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		l := NewNaiveLimiter(500)
		for i := range 500 {
			require.NoError(t, l.Acquire(t.Context()), "acquire %d", i)
		}
		assert.Equal(t, time.Duration(0), time.Since(start), "a full bucket hands out 500 tokens at once")

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- l.Acquire(ctx) }()
		synctest.Wait()
		assert.Equal(t, 1, l.Queued(), "the 501st caller is queued")
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
}

// The guide's bug: a queued caller is woken only by a later caller's
// refill, however long it has been waiting.
func TestNaiveLimiterWakesOnlyOnLaterAcquire(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewNaiveLimiter(60)
		for range 60 {
			require.NoError(t, l.Acquire(t.Context()))
		}
		var woken atomic.Bool
		done := make(chan error, 1)
		go func() {
			err := l.Acquire(t.Context())
			woken.Store(true)
			done <- err
		}()
		time.Sleep(10 * time.Minute) // 600 tokens' worth of refill time
		synctest.Wait()
		assert.False(t, woken.Load(), "no refill happens without a later acquire")
		assert.Equal(t, 1, l.Queued())

		require.NoError(t, l.Acquire(t.Context()), "the later caller refills the bucket")
		require.NoError(t, <-done, "and so wakes the queued one")
		assert.Zero(t, l.Queued())
	})
}

func TestNaiveLimiterQueuedUntilContextEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewNaiveLimiter(60)
		for range 60 {
			require.NoError(t, l.Acquire(t.Context()))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := l.Acquire(ctx)
		assert.ErrorIs(t, err, ErrNaiveQueued)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 10*time.Second, time.Since(start), "only the context ends the wait")
		assert.Zero(t, l.Queued(), "the caller left the queue")
	})
}

func TestNaiveRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		random float64
		want   time.Duration
	}{
		{"", 0, 5 * time.Second},                  // absent: the guide's "5"
		{"", 0.5, 6 * time.Second},                // plus up to 2 s of jitter
		{"2", 0, 2 * time.Second},                 // whole seconds
		{" 3", 0.25, 3500 * time.Millisecond},     // parseInt skips leading blanks
		{"1.9", 0, time.Second},                   // parseInt drops the fraction
		{"30abc", 0, 30 * time.Second},            // and whatever follows the digits
		{"abc", 0.9, 0},                           // NaN: setTimeout does not wait at all
		{"Wed, 21 Oct 2015 07:28:00 GMT", 0.9, 0}, // an HTTP date is NaN too
		{"-3", 0.5, 0},                            // a negative delay is no delay
		{"9999999999", 0, time.Millisecond},       // past 2^31-1 ms setTimeout overflows to 1 ms
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, naiveRetryAfter(tt.header, tt.random), "Retry-After %q, random %v", tt.header, tt.random)
	}
}

func TestNaiveRetry(t *testing.T) {
	chat := ScenarioChatModel
	tests := []struct {
		name   string
		cfg    Config
		warm   int    // requests sent first, to empty the server's bucket
		model  string // "" means chat
		want   []time.Duration
		status []int
		err    error // nil: a 2xx is returned
	}{
		{
			name:   "429 without Retry-After sleeps 5 s plus jitter",
			cfg:    Config{Limits: map[string]Limit{Chat: {RPM: 60}}},
			warm:   1,
			want:   []time.Duration{0, 5500 * time.Millisecond},
			status: []int{429, 200},
		},
		{
			name:   "429 with Retry-After sleeps its whole seconds plus jitter",
			cfg:    Config{Limits: map[string]Limit{Chat: {RPM: 2}}, Headers: HeaderRetryAfter},
			warm:   1,
			want:   []time.Duration{0, 30500 * time.Millisecond},
			status: []int{429, 200},
		},
		{
			name:   "429s to the end: sleeps after the last one too, then gives up",
			cfg:    Config{Limits: map[string]Limit{Chat: {RPM: 1, Window: time.Minute}}},
			warm:   1,
			want:   []time.Duration{0, 5500 * time.Millisecond, 11 * time.Second, 16500 * time.Millisecond, 22 * time.Second},
			status: []int{429, 429, 429, 429, 429},
			err:    ErrNaiveMaxRetries,
		},
		{
			name:   "5xx backs off 2^attempt s and gives up on the last",
			cfg:    Config{Faults: []Fault{{Kind: FaultStatus, Status: 500}}},
			want:   []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second},
			status: []int{500, 500, 500, 500, 500},
			err:    &NaiveStatusError{Status: 500},
		},
		{
			name:   "other statuses are thrown at once",
			cfg:    Config{},
			model:  "no/such-model",
			want:   []time.Duration{0},
			status: []int{404},
			err:    &NaiveStatusError{Status: 404},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := NewServer(tt.cfg)
				for range tt.warm {
					resp, err := nvChat(t.Context(), srv, chat)
					require.NoError(t, err)
					nvClose(resp)
				}
				rt := NaiveRetry(NewNaiveLimiter(NaiveChatRPM), nvJitter)(srv)
				model := tt.model
				if model == "" {
					model = chat
				}
				start := time.Now()
				resp, err := nvChat(t.Context(), rt, model)
				elapsed := time.Since(start)
				switch want := tt.err; {
				case want == nil:
					require.NoError(t, err)
					assert.Equal(t, http.StatusOK, resp.StatusCode)
					nvClose(resp)
				case errors.Is(want, ErrNaiveMaxRetries):
					assert.ErrorIs(t, err, ErrNaiveMaxRetries)
					assert.Nil(t, resp)
					assert.Equal(t, tt.want[len(tt.want)-1]+5500*time.Millisecond, elapsed, "it sleeps after the last 429")
				default:
					var se *NaiveStatusError
					require.ErrorAs(t, err, &se)
					assert.Equal(t, want.(*NaiveStatusError).Status, se.Status)
					assert.Contains(t, se.Error(), fmt.Sprintf("Together API %d: {", se.Status), "the thrown error carries the answer's body")
					assert.Nil(t, resp)
				}
				arrivals := srv.Arrivals()[tt.warm:]
				var at []time.Duration
				var status []int
				for _, a := range arrivals {
					at = append(at, a.At-arrivals[0].At)
					status = append(status, a.Status)
				}
				assert.Equal(t, tt.want, at, "arrival times")
				assert.Equal(t, tt.status, status, "statuses")
			})
		})
	}
}

// The guide's sleeps do not listen to the context: a caller with a 2 s
// deadline hears back 3.5 s after it.
func TestNaiveRetrySleepsPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{Limits: map[string]Limit{Chat: {RPM: 60}}})
		resp, err := nvChat(t.Context(), srv, ScenarioChatModel)
		require.NoError(t, err)
		nvClose(resp)

		rt := NaiveRetry(NewNaiveLimiter(NaiveChatRPM), nvJitter)(srv)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		start := time.Now()
		resp, err = nvChat(ctx, rt, ScenarioChatModel)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 5500*time.Millisecond, time.Since(start))
	})
}

func TestNaiveMiddlewareRoutesByEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{})
		n := NewNaive(1)
		client := &http.Client{Transport: n.Middleware()(srv)}
		// Without the job's sleeps, 250 requests take every token at once.
		done, err := EmbedSequential(NaiveBatchSize)(t.Context(), client, ScenarioBaseURL, ScenarioEmbedModel, make([]string, NaiveEmbedRPM*NaiveBatchSize))
		require.NoError(t, err)
		require.Equal(t, NaiveEmbedRPM*NaiveBatchSize, done)

		// The embeddings bucket is empty now: the next embedding request
		// queues, while chat still has its own 500 tokens.
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan error, 1)
		go func() {
			_, err := NaiveEmbed(ctx, client, ScenarioBaseURL, ScenarioEmbedModel, []string{"one more"})
			res <- err
		}()
		synctest.Wait()
		assert.Equal(t, 1, n.Embed.Queued())
		resp, err := nvChat(t.Context(), client.Transport, ScenarioChatModel)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		nvClose(resp)
		cancel()
		assert.ErrorIs(t, <-res, ErrNaiveQueued)
	})
}

func TestNaiveEmbedSleepsBetweenBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{})
		client := &http.Client{Transport: NewNaive(1).Middleware()(srv)}
		texts := make([]string, 90)
		for i := range texts {
			texts[i] = fmt.Sprint("text ", i)
		}
		start := time.Now()
		done, err := NaiveEmbed(t.Context(), client, ScenarioBaseURL, ScenarioEmbedModel, texts)
		require.NoError(t, err)
		assert.Equal(t, 90, done)
		assert.Equal(t, 12*time.Second, time.Since(start), "3 s after each batch but the last")
		var at []time.Duration
		for _, a := range srv.Arrivals() {
			at = append(at, a.At)
		}
		assert.Equal(t, []time.Duration{0, 3 * time.Second, 6 * time.Second, 9 * time.Second, 12 * time.Second}, at)
	})
}

func TestEmbedSequentialStopsAtFirstFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := NewServer(Config{Limits: map[string]Limit{Embeddings: {RPM: 180}}}) // a bucket of 3
		client := &http.Client{Transport: srv}
		done, err := EmbedSequential(10)(t.Context(), client, ScenarioBaseURL, ScenarioEmbedModel, make([]string, 100))
		assert.Equal(t, 30, done)
		assert.ErrorContains(t, err, "status 429")
		assert.Len(t, srv.Arrivals(), 4)
	})
}

func ExampleNaiveLimiter() {
	l := NewNaiveLimiter(500)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // so that a queued caller gives up at once
	n := 0
	for l.Acquire(ctx) == nil {
		n++
	}
	fmt.Println(n, "tokens at once; then:", l.Acquire(ctx))
	// Output:
	// 500 tokens at once; then: conformance: naive limiter: queued, and no later caller refilled the bucket: context canceled
}
