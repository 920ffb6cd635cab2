package together_test

import (
	"context"
	"io"
	"net/http"
	"strings"
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

// TestEmbedAllReturnsWhatSucceededAndResumes has the server fail every
// embedding request for its first 10 seconds with a 404 that is not about
// the model (a proxy's route missing during a deploy): not retried, not
// about a text (a 400 is, and is split: see embed_refused_test.go), not
// what every batch gets. EmbedAll returns the vectors of the rest and the
// exact indexes that failed; a resume then embeds only those, in one call.
func TestEmbedAllReturnsWhatSucceededAndResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{
			Limits: map[string]conformance.Limit{conformance.Embeddings: {RPM: 300}},
			Faults: []conformance.Fault{{Kind: conformance.FaultStatus, Status: 404, Endpoint: conformance.Embeddings, Until: 10 * time.Second}},
		})
		in := texts(2000)
		cat := together.NewCatalog(client, "", 0) // fetched once for both calls
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in, together.WithCatalog(cat))
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		var api *together.APIError
		require.ErrorAs(t, err, &api, "the first failure is kept")
		assert.Equal(t, 404, api.StatusCode)

		require.Len(t, vecs, len(in))
		failed := map[int]bool{}
		for _, i := range partial.Failed {
			failed[i] = true
		}
		for i, v := range vecs {
			assert.Equal(t, failed[i], v == nil, "text %d: failed iff it has no vector", i)
		}
		require.NotEmpty(t, partial.Failed)
		require.Less(t, len(partial.Failed), len(in))
		assert.Zero(t, len(partial.Failed)%together.DefaultEmbedBatch, "whole requests fail")

		before := srv.Stats().Arrivals
		vecs2, err := together.EmbedAll(context.Background(), client, embedModel, in, together.WithResume(vecs), together.WithCatalog(cat))
		require.NoError(t, err)
		for i, v := range vecs2 {
			assert.NotNil(t, v, "text %d", i)
		}
		assert.Equal(t, len(partial.Failed)/together.DefaultEmbedBatch, srv.Stats().Arrivals-before,
			"only the failed part is sent again")
	})
}

func TestEmbedAllCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := simClient(conformance.Config{
			Limits: map[string]conformance.Limit{conformance.Embeddings: {RPM: 60}},
		})
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in := texts(400)
		vecs, err := together.EmbedAll(ctx, client, embedModel, in, together.WithoutModelCheck())
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		done := 0
		for _, v := range vecs {
			if v != nil {
				done++
			}
		}
		assert.Equal(t, len(in), done+len(partial.Failed), "every text is accounted for")
		assert.Positive(t, done)
	})
}

func TestEmbedAllInputs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, nil)
		require.NoError(t, err)
		assert.Empty(t, vecs)
		assert.Zero(t, srv.Stats().Arrivals, "nothing to do, nothing sent")

		_, err = together.EmbedAll(context.Background(), client, embedModel, texts(3), together.WithResume(make([][]float32, 2)))
		assert.Error(t, err)

		var progress [][2]int
		vecs, err = together.EmbedAll(context.Background(), client, embedModel, texts(25),
			together.WithBatchSize(10), together.WithConcurrency(1),
			together.WithProgress(func(done, total int) { progress = append(progress, [2]int{done, total}) }))
		require.NoError(t, err)
		assert.Len(t, vecs, 25)
		assert.Equal(t, [][2]int{{10, 25}, {20, 25}, {25, 25}}, progress)
	})
}

// TestEmbedAllRejectsABadAnswer: a 200 whose body is cut short fails its
// texts instead of filling them with garbage.
func TestEmbedAllRejectsABadAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, client := simClient(conformance.Config{
			Faults: []conformance.Fault{{Kind: conformance.FaultTruncate, Endpoint: conformance.Embeddings}},
		})
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, texts(40))
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Len(t, partial.Failed, 40)
		for _, v := range vecs {
			assert.Nil(t, v)
		}
	})
}

// An answer that is not one whole vector per text, each at its index and
// all of one length, fails its batch: the texts are reported, not counted
// as embedded, and WithResume sends them again.
func TestEmbedAllRefusesAnswersThatAreNotWhole(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
		why    string
	}{
		{"empty vector", `{"data":[{"index":0,"embedding":[]},{"index":1,"embedding":[1,2]}]}`, "empty vector"},
		{"vectors of two lengths", `{"data":[{"index":0,"embedding":[1,2,3]},{"index":1,"embedding":[1,2]}]}`, "vectors of"},
		{"missing index", `{"data":[{"embedding":[1,2]},{"index":1,"embedding":[1,2]}]}`, "without an index"},
		{"null vector", `{"data":[{"index":0,"embedding":null},{"index":1,"embedding":[1,2]}]}`, "empty vector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			base := transport.Func(func(r *http.Request) (*http.Response, error) {
				_ = r.Body.Close()
				calls++
				body := tc.answer
				if calls > 1 {
					body = `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[3,4]}]}`
				}
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(body))}, nil
			})
			client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
			in := []string{"a", "b"}
			vecs, err := together.EmbedAll(context.Background(), client, embedModel, in, together.WithoutModelCheck())
			var partial *together.EmbedError
			require.ErrorAs(t, err, &partial)
			assert.ErrorContains(t, err, tc.why)
			assert.Equal(t, []int{0, 1}, partial.Failed)
			assert.Equal(t, [][]float32{nil, nil}, vecs, "nothing of the batch is taken")
			vecs, err = together.EmbedAll(context.Background(), client, embedModel, in, together.WithoutModelCheck(), together.WithResume(vecs))
			require.NoError(t, err)
			assert.Equal(t, [][]float32{{1, 2}, {3, 4}}, vecs)
		})
	}
}

// A batch whose vectors differ in length from the others' fails: a corpus
// embedded with two models (a fallback, a proxy's mix-up) is not one index.
func TestEmbedAllRefusesABatchOfAnotherLength(t *testing.T) {
	calls := 0
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		_ = r.Body.Close()
		calls++
		body := `{"data":[{"index":0,"embedding":[1,2]}]}`
		if calls == 2 {
			body = `{"data":[{"index":0,"embedding":[1,2,3]}]}`
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r, Body: io.NopCloser(strings.NewReader(body))}, nil
	})
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
	vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a", "b", "c"},
		together.WithoutModelCheck(), together.WithBatchSize(1), together.WithConcurrency(1))
	var partial *together.EmbedError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, []int{1}, partial.Failed)
	assert.Equal(t, [][]float32{{1, 2}, nil, {1, 2}}, vecs)
}

// EmbedAll's batches do not fall back (WithFallback on the client): the
// alternate's vectors, even of the same length, cannot be compared with
// the asked model's, and would be paid for and thrown away. The batch
// fails with the model's own answer, and the alternate is never asked.
func TestEmbedAllDoesNotPayForAFallbackModel(t *testing.T) {
	const alternate = "WhereIsAI/UAE-Large-V1"
	var mu sync.Mutex
	asked := map[string]int{}
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(r.Body)
		_ = r.Body.Close()
		answer := func(status int, s string) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
				Body: io.NopCloser(strings.NewReader(s))}, nil
		}
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(string(body), embedModel) {
			asked[embedModel]++
			return answer(503, `{"error":{"message":"model overloaded","type":"server_error"}}`)
		}
		asked[alternate]++
		return answer(200, `{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[3,4]}]}`)
	})
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"),
		together.WithMaxRetries(0), together.WithFallback(embedModel, alternate))}
	vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a", "b"}, together.WithoutModelCheck())
	var partial *together.EmbedError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, []int{0, 1}, partial.Failed)
	assert.ErrorIs(t, err, together.ErrOverloaded, "the model's own answer")
	assert.Equal(t, [][]float32{nil, nil}, vecs)
	assert.Equal(t, map[string]int{embedModel: 1}, asked, "the alternate is not asked")

	// A chat through the same client still falls back.
	req, err := http.NewRequest(http.MethodPost, together.DefaultBaseURL+"/embeddings",
		strings.NewReader(`{"model":"`+embedModel+`","input":["a","b"]}`))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, alternate, resp.Header.Get(transport.ModelHeader), "other requests fall back as before")
}

// An answer another model served (a fallback outside the preset, a
// proxy's mix-up) fails its batch: vectors of two models in one corpus
// cannot be compared.
func TestEmbedAllRefusesVectorsOfAnotherModel(t *testing.T) {
	const alternate = "WhereIsAI/UAE-Large-V1"
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		_ = r.Body.Close()
		return &http.Response{StatusCode: 200, Request: r,
			Header: http.Header{"Content-Type": {"application/json"}, transport.ModelHeader: {alternate}},
			Body:   io.NopCloser(strings.NewReader(`{"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[3,4]}]}`))}, nil
	})
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
	vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a", "b"}, together.WithoutModelCheck())
	var partial *together.EmbedError
	require.ErrorAs(t, err, &partial, "vectors of %s are not vectors of %s", alternate, embedModel)
	assert.Equal(t, []int{0, 1}, partial.Failed)
	assert.ErrorContains(t, err, alternate)
	assert.Equal(t, [][]float32{nil, nil}, vecs)
}

// A 200 whose body is an error, not vectors, fails its batch with the
// server's error, parsed as any other status's is, the key removed.
func TestEmbedAllNamesTheErrorOfA200(t *testing.T) {
	const key = "tgp_v1_SECRET0123456789"
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		_ = r.Body.Close()
		body := `{"error":{"message":"Input validation error: inputs must have less than 512 tokens (key ` + key + `)","type":"invalid_request_error"}}`
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
			Body: io.NopCloser(strings.NewReader(body))}, nil
	})
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey(key))}
	vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a", "b"}, together.WithoutModelCheck())
	var partial *together.EmbedError
	require.ErrorAs(t, err, &partial)
	assert.Equal(t, []int{0, 1}, partial.Failed)
	assert.Equal(t, [][]float32{nil, nil}, vecs)
	var api *together.APIError
	require.ErrorAs(t, err, &api, "the server's error, typed")
	assert.Equal(t, "invalid_request_error", api.Type)
	assert.ErrorContains(t, err, "inputs must have less than 512 tokens")
	assert.NotContains(t, err.Error(), "SECRET")
}

// A vector with a null in it (what a JavaScript server writes for a NaN)
// fails its batch: json would make the null a silent 0.
func TestEmbedAllRefusesAVectorWithANull(t *testing.T) {
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		_ = r.Body.Close()
		return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
			Body: io.NopCloser(strings.NewReader(`{"data":[{"index":0,"embedding":[1,null,3]}]}`))}, nil
	})
	client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
	vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a"}, together.WithoutModelCheck())
	var partial *together.EmbedError
	require.ErrorAs(t, err, &partial)
	assert.ErrorContains(t, err, "null")
	assert.Equal(t, [][]float32{nil}, vecs)
}
