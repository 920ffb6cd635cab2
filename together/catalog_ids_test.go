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
