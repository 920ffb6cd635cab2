package together_test

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// embedAnswer is an embeddings answer of n vectors of dim values as
// Together writes it: each value a float32 widened to a float64 and
// written whole, as Python's json does (about 21 bytes a value).
func embedAnswer(n, dim int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString(`{"object":"list","model":"` + embedModel + `","data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"object":"embedding","index":` + strconv.Itoa(i) + `,"embedding":[`)
		for j := range dim {
			if j > 0 {
				b.WriteByte(',')
			}
			v := float64(float32(r.NormFloat64() / math.Sqrt(float64(dim))))
			b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`],"usage":{"prompt_tokens":1,"total_tokens":1}}`)
	return b.String()
}

// embedServer answers every embeddings request with answer(texts in it),
// counting the requests that arrive.
func embedServer(answer func(n int) string) (*http.Client, *atomic.Int64) {
	var arrivals atomic.Int64
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		var in struct{ Input []string }
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err // a request EmbedAll did not write
		}
		arrivals.Add(1)
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
			Request: r, Body: io.NopCloser(strings.NewReader(answer(len(in.Input))))}, nil
	})
	return &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}, &arrivals
}

// The real figure: a 4,096-value vector is about 88 KB of JSON, so a
// thousand of them (WithBatchSize(1000)) are about 84 MiB, over 64 MiB;
// the cap of such a batch holds them, and that of the default batch of 20
// is still 64 MiB.
func TestTheCapOfAnEmbeddingsAnswerHoldsAThousandVectorsOf4096Values(t *testing.T) {
	one := int64(len(embedAnswer(1, 4096)))
	t.Logf("one vector of 4,096 values: %d bytes of JSON (%.1f a value); 1,000: %.1f MiB", one, float64(one)/4096, float64(one*1000)/(1<<20))
	assert.Greater(t, together.EmbedAnswerLimit(1000), 1000*one*5/4, "a thousand vectors of 4,096 values, with a quarter to spare")
	assert.Equal(t, int64(64<<20), together.EmbedAnswerLimit(together.DefaultEmbedBatch))
	assert.Equal(t, int64(64<<20), together.EmbedAnswerLimit(1))
}

// An answer over its cap fails its batch with an error that names the cap
// and WithBatchSize; it is not a cut answer (io.ErrUnexpectedEOF, a
// connection failure retry.ShouldRetry retries): the server answered
// whole, and billed the batch.
func TestAnEmbeddingsAnswerOverItsCapNamesTheCapAndWithBatchSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, arrivals := embedServer(func(n int) string { return embedAnswer(n, 300) }) // ~6 KB a text
		in := texts(4)
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in,
			together.WithoutModelCheck(), together.WithAnswerBounds(8<<10, 256))
		t.Logf("error: %v", err)
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Equal(t, []int{0, 1, 2, 3}, partial.Failed)
		assert.Equal(t, make([][]float32, 4), vecs)
		assert.ErrorContains(t, err, "8 KiB", "the cap")
		assert.ErrorContains(t, err, "WithBatchSize")
		assert.NotErrorIs(t, err, io.ErrUnexpectedEOF, "not a cut answer")
		assert.False(t, retry.ShouldRetry(nil, err), "not retryable: the work was done and billed")
		assert.Equal(t, int64(1), arrivals.Load())
		var tooLarge *together.EmbedAnswerTooLargeError
		require.ErrorAs(t, err, &tooLarge, "typed")
		assert.Equal(t, 4, tooLarge.Texts)
		assert.Equal(t, int64(8<<10), tooLarge.Limit)
	})
}

// A batch answered over its cap is sent once, and the batches after it are
// not sent at all: of the same size and model, each would be answered
// over the cap too, billed, and thrown away. Their texts are failed with
// the cap's error, for a resume with a smaller WithBatchSize.
func TestABatchAnsweredOverItsCapIsNotSentAgainNorAreTheRest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, arrivals := embedServer(func(n int) string { return embedAnswer(n, 300) })
		in := texts(20)
		var done int
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in,
			together.WithoutModelCheck(), together.WithAnswerBounds(8<<10, 256),
			together.WithBatchSize(4), together.WithConcurrency(1),
			together.WithProgress(func(d, total int) { done = d }))
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Len(t, partial.Failed, 20)
		assert.Equal(t, 20, done)
		assert.Equal(t, make([][]float32, 20), vecs)
		assert.Equal(t, int64(1), arrivals.Load(), "one batch billed and not read, no other sent")
		var tooLarge *together.EmbedAnswerTooLargeError
		require.ErrorAs(t, err, &tooLarge, "the error that stopped the run")

		// Resumed with batches whose answers fit, every text is embedded.
		vecs, err = together.EmbedAll(context.Background(), client, embedModel, in,
			together.WithoutModelCheck(), together.WithAnswerBounds(8<<10, 256),
			together.WithBatchSize(1), together.WithResume(vecs))
		require.NoError(t, err)
		for i, v := range vecs {
			assert.Len(t, v, 300, "text %d", i)
		}
	})
}

// The cap grows with the batch: a batch of 16 texts may answer 16 times
// the allowance a text, past the floor.
func TestTheCapOfAnEmbeddingsAnswerGrowsWithTheBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		client, arrivals := embedServer(func(n int) string { return embedAnswer(n, 32) }) // ~700 bytes a text
		in := texts(16)
		require.Greater(t, len(embedAnswer(16, 32)), 4<<10)
		require.Less(t, len(embedAnswer(16, 32)), 16<<10)
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in,
			together.WithoutModelCheck(), together.WithAnswerBounds(4<<10, 1<<10), together.WithBatchSize(16))
		require.NoError(t, err)
		assert.Len(t, vecs, 16)
		assert.Equal(t, int64(1), arrivals.Load())
	})
}

// An answer of exactly its cap is read whole; one a byte longer is past
// it.
func TestAnEmbeddingsAnswerOfExactlyItsCapIsRead(t *testing.T) {
	answer := embedAnswer(2, 8)
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"at the cap", answer, true},
		{"a byte past it", "{ " + answer[1:], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, _ := embedServer(func(int) string { return tc.body })
			vecs, err := together.EmbedAll(context.Background(), client, embedModel, texts(2),
				together.WithoutModelCheck(), together.WithAnswerBounds(int64(len(answer)), 1))
			if tc.ok {
				require.NoError(t, err)
				assert.Len(t, vecs[1], 8)
				return
			}
			var tooLarge *together.EmbedAnswerTooLargeError
			require.ErrorAs(t, err, &tooLarge)
			assert.Equal(t, int64(len(answer)), tooLarge.Limit)
		})
	}
}
