package together_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

func TestEmbedAllSendsAtBatchPriority(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(context.Context) context.Context
		opts []together.EmbedOption
		want int
	}{
		{"by default", func(ctx context.Context) context.Context { return ctx }, nil, transport.PriorityBatch},
		{"the context's own", func(ctx context.Context) context.Context { return transport.WithPriority(ctx, 7) }, nil, 7},
		{"the context's own, the default", func(ctx context.Context) context.Context {
			return transport.WithPriority(ctx, transport.PriorityDefault)
		}, nil, transport.PriorityDefault},
		{"WithPriority", func(ctx context.Context) context.Context { return transport.WithPriority(ctx, 7) },
			[]together.EmbedOption{together.WithPriority(transport.PriorityDefault)}, transport.PriorityDefault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sim := conformance.NewServer(conformance.Config{})
				var mu sync.Mutex
				var seen []int
				base := transport.Func(func(req *http.Request) (*http.Response, error) {
					mu.Lock()
					seen = append(seen, transport.PriorityOf(req.Context()))
					mu.Unlock()
					return sim.RoundTrip(req)
				})
				client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"), together.WithBaseURL("http://sim.test/v1"))}
				opts := append([]together.EmbedOption{together.WithAPIBase("http://sim.test/v1"), together.WithoutModelCheck()}, tc.opts...)
				_, err := together.EmbedAll(tc.ctx(context.Background()), client, embedModel, texts(60), opts...)
				require.NoError(t, err)
				require.Len(t, seen, 3)
				for _, p := range seen {
					assert.Equal(t, tc.want, p)
				}
			})
		})
	}
}

// A search's query embedded while EmbedAll runs a corpus through the same
// model and key is served at the next token, not behind the corpus's
// queue.
func TestAQueryIsServedAheadOfEmbedAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := simClient(conformance.Config{
			Limits:  map[string]conformance.Limit{conformance.Embeddings: {RPM: 300}},
			Latency: 150 * time.Millisecond,
		}, together.WithRate(together.RouteEmbeddings, 300))
		ctx := context.Background()
		done := make(chan struct{})
		var waits []time.Duration
		go func() {
			defer close(done)
			_, err := together.EmbedAll(ctx, client, embedModel, texts(2000), together.WithoutModelCheck()) // 100 requests: 20 s
			assert.NoError(t, err)
		}()
		q := transport.WithPriority(ctx, transport.PriorityInteractive)
		for range 8 {
			time.Sleep(2 * time.Second)
			start := time.Now()
			_, err := together.EmbedAll(q, client, embedModel, texts(1), together.WithoutModelCheck())
			require.NoError(t, err)
			waits = append(waits, time.Since(start))
		}
		<-done
		t.Logf("queries answered in %v", waits)
		// The answer's 150 ms, and at most a token's wait at 5 a second.
		assert.LessOrEqual(t, slices.Max(waits), 350*time.Millisecond, "%v", waits)
	})
}

// WithAPIBase("") keeps the default root, as the catalog does: batches
// and the model check go to the same place, the client's own root.
func TestEmbedAllWithAnEmptyAPIBaseKeepsTheDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := conformance.NewServer(conformance.Config{})
		client := &http.Client{Transport: together.NewTransport(sim, together.WithAPIKey("k"), together.WithBaseURL("http://sim.test/v1"))}
		got, err := together.EmbedAll(context.Background(), client, embedModel, texts(3), together.WithAPIBase(""))
		require.NoError(t, err)
		assert.Len(t, got, 3)
	})
}
