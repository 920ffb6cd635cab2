package together_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

const embedModel = "BAAI/bge-large-en-v1.5"

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("document %d: the quick brown fox jumps over the lazy dog", i)
	}
	return out
}

// simClient is a client from NewClient in front of an in-memory simulated
// provider. Call it inside a synctest bubble.
func simClient(cfg conformance.Config, opts ...together.Option) (*conformance.Server, *http.Client) {
	srv := conformance.NewServer(cfg)
	opts = append([]together.Option{together.WithAPIKey("test-key"), together.WithBaseURL("http://sim.test/v1")}, opts...)
	return srv, &http.Client{Transport: together.NewTransport(srv, opts...)}
}

// TestEmbedAllGuideJob runs the guide's job: 10,000 texts, 20 a request,
// against embeddings limited to 300 requests a minute, enforced per
// second. The least possible time is (500 requests - 5 of burst) / 5 a
// second = 99 s.
func TestEmbedAllGuideJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{
			Limits:  map[string]conformance.Limit{conformance.Embeddings: {RPM: 300}},
			Latency: 150 * time.Millisecond, LatencyJitter: 100 * time.Millisecond,
		})
		in := texts(10_000)
		var calls, lastDone int
		start := time.Now()
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in,
			together.WithProgress(func(done, total int) {
				calls++
				assert.Equal(t, 10_000, total)
				assert.Greater(t, done, lastDone)
				lastDone = done
			}))
		elapsed := time.Since(start)
		require.NoError(t, err)
		require.Len(t, vecs, len(in))
		for i, v := range vecs {
			require.NotEmpty(t, v, "text %d", i)
		}
		assert.Equal(t, 500, calls)
		assert.Equal(t, 10_000, lastDone)

		st := srv.Stats()
		least := 99 * time.Second
		t.Logf("EmbedAll: %d texts, %d arrivals, %d 429s, %v (least possible %v, ratio %.3f)",
			len(in), st.Arrivals, st.TooMany, elapsed, least, float64(elapsed)/float64(least))
		assert.LessOrEqual(t, elapsed, least*105/100, "within 5% of the least possible time")
		assert.LessOrEqual(t, st.TooMany, 5, "no 429 storm")
	})
}
