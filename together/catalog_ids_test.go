package together_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// A model list whose entries name no model ([{}], [null], a gateway's
// entries keyed "name") is no catalog to judge a model by, as an empty
// list is not: EmbedAll must not refuse a model the server serves as
// "unknown" (suggesting "" as the closest), and the list is not kept.
func TestAModelListWithoutIDsIsNotACatalog(t *testing.T) {
	for _, body := range []string{`[{}]`, `[null]`, `{"object":"list","data":[{"name":"BAAI/bge-large-en-v1.5"}]}`} {
		t.Run(body, func(t *testing.T) {
			base := transport.Func(func(r *http.Request) (*http.Response, error) {
				if r.Body != nil {
					_ = r.Body.Close()
				}
				answer := `{"data":[{"index":0,"embedding":[1,2]}]}`
				if r.Method == http.MethodGet {
					answer = body
				}
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(answer))}, nil
			})
			client := &http.Client{Transport: base}
			vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a"},
				together.WithAPIBase("http://sim.test/v1"))
			require.NoError(t, err)
			assert.Equal(t, [][]float32{{1, 2}}, vecs)
		})
	}
}

// A model list is read up to 16 MiB; suggesting the closest models for an
// unknown one must not cost memory many times that (levenshtein keeps two
// rows of the length of each id: 16 bytes per byte of a garbage id).
func TestUnknownModelOfAGarbageCatalogIsCheap(t *testing.T) {
	huge := strings.Repeat("x", 4<<20)
	body := `[{"id":"BAAI/bge-large-en-v1.5"},{"id":"` + huge + `"}]`
	cat := together.NewCatalog(answering(200, []byte(body)), "http://sim.test/v1", 0)
	_, err := cat.Models(context.Background())
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err = cat.Check(context.Background(), "BAAI/bge-large-en")
	runtime.ReadMemStats(&after)
	var unknown *together.UnknownModelError
	require.ErrorAs(t, err, &unknown)
	assert.Equal(t, []string{"BAAI/bge-large-en-v1.5"}, unknown.Suggestions)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated by one Check")
}

// One entry of the model list written otherwise than the rest (a context
// length written as a float, as Python's json writes a number that went
// through a float, or as text) is no reason to throw the catalog away and
// call the list "not JSON": the entry keeps its id, and the others are
// read as they are.
func TestAModelListWithAnOddFieldIsStillACatalog(t *testing.T) {
	body := `{"object":"list","data":[
		{"id":"BAAI/bge-large-en-v1.5","type":"embedding","context_length":512},
		{"id":"meta-llama/Llama-3.3-70B-Instruct-Turbo","type":"chat","context_length":131072.0},
		{"id":"mistralai/Mixtral-8x7B-Instruct-v0.1","type":"chat","context_length":"32768","display_name":{"en":"Mixtral"}}]}`
	models, err := together.NewCatalog(answering(200, []byte(body)), "http://sim.test/v1", 0).Models(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []together.Model{
		{ID: "BAAI/bge-large-en-v1.5", Type: "embedding", ContextLength: 512},
		{ID: "meta-llama/Llama-3.3-70B-Instruct-Turbo", Type: "chat", ContextLength: 131072},
		{ID: "mistralai/Mixtral-8x7B-Instruct-v0.1", Type: "chat", ContextLength: 32768},
	}, models)
}

// A model list past the 16 MiB it is read to is refused as such, not as a
// list "not JSON" (which it may well be, cut where the cap fell).
func TestAModelListOverItsCapSaysSo(t *testing.T) {
	entry := `{"id":"org/model-` + strings.Repeat("x", 1000) + `","type":"chat"},`
	body := `[` + strings.Repeat(entry, (16<<20)/len(entry)+1) + `{"id":"BAAI/bge-large-en-v1.5"}]`
	_, err := together.NewCatalog(answering(200, []byte(body)), "http://sim.test/v1", 0).Models(context.Background())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "not JSON")
	assert.Contains(t, err.Error(), "16 MiB")
}

// A model the list names more than once (a gateway that merges the lists
// of several backends, or a model served at two sizes of context) is one
// model: the suggestions for an unknown model name it once, and the
// places it took go to the next closest.
func TestUnknownModelSuggestsAModelListedTwiceOnce(t *testing.T) {
	body := `[{"id":"bge-large"},{"id":"bge-large"},{"id":"bge-large"},
		{"id":"bge-base"},{"id":"bge-small"},{"id":"bge-base"}]`
	cat := together.NewCatalog(answering(200, []byte(body)), "http://sim.test/v1", 0)
	err := cat.Check(context.Background(), "bge-larg")
	var unknown *together.UnknownModelError
	require.ErrorAs(t, err, &unknown)
	assert.Equal(t, []string{"bge-large", "bge-base", "bge-small"}, unknown.Suggestions)
	assert.Contains(t, err.Error(), "did you mean bge-large, bge-base, bge-small?")
}
