package together_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// Models asks the server each time; a Catalog keeps the list, fetched
// through any client of the preset at its own root.
func TestACatalogKeepsTheList(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		_, err := together.Models(context.Background(), client)
		require.NoError(t, err)
		assert.Equal(t, 1, srv.Stats().Arrivals)
		cat := together.NewCatalog(client, "", 0)
		for range 3 {
			models, err := cat.Models(context.Background())
			require.NoError(t, err)
			require.Len(t, models, len(conformance.DefaultModels()))
		}
		assert.Equal(t, 2, srv.Stats().Arrivals, "one request for three calls")
		time.Sleep(together.DefaultCatalogTTL)
		_, err = cat.Models(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 3, srv.Stats().Arrivals, "asked again once the list is stale")
	})
}

// One fetch serves every caller that asks while it runs, and each leaves
// at its own deadline: a caller without one, whose fetch hangs, does not
// hold a caller with a deadline of a second.
func TestCatalogCallersLeaveAtTheirOwnDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fetches atomic.Int32
		release := make(chan struct{})
		hang := transport.Func(func(r *http.Request) (*http.Response, error) {
			fetches.Add(1)
			select {
			case <-release:
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"data":[{"id":"m"}]}`))}, nil
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		})
		cat := together.NewCatalog(&http.Client{Transport: hang}, "http://sim.test/v1", 0)
		var patient error
		done := make(chan struct{})
		go func() {
			_, patient = cat.Models(context.Background()) // no deadline
			close(done)
		}()
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		_, err := cat.Models(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start), "left at its own deadline")
		assert.Equal(t, int32(1), fetches.Load(), "one fetch for both")
		close(release)
		<-done
		require.NoError(t, patient, "the patient caller got the list")
		models, err := cat.Models(context.Background())
		require.NoError(t, err)
		assert.Len(t, models, 1)
		assert.Equal(t, int32(1), fetches.Load(), "kept")
	})
}

// A fetch whose every caller has left is cancelled.
func TestCatalogFetchEndsWhenEveryCallerLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cancelled := make(chan struct{})
		hang := transport.Func(func(r *http.Request) (*http.Response, error) {
			<-r.Context().Done()
			close(cancelled)
			return nil, r.Context().Err()
		})
		cat := together.NewCatalog(&http.Client{Transport: hang}, "http://sim.test/v1", 0)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := cat.Models(ctx)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		<-cancelled
	})
}

func TestModelsOfAPlainClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		client := &http.Client{Transport: srv}
		cat := together.NewCatalog(client, "http://sim.test/v1", time.Minute)
		models, err := cat.Models(context.Background())
		require.NoError(t, err)
		var ids []string
		for _, m := range models {
			ids = append(ids, m.ID)
		}
		assert.ElementsMatch(t, conformance.DefaultModels(), ids)
		assert.NoError(t, cat.Check(context.Background(), embedModel))
	})
}

func TestUnknownModelSuggestsTheClosest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		_, err := together.EmbedAll(context.Background(), client, "BAAI/bge-large-en-v1", texts(40))
		var unknown *together.UnknownModelError
		require.ErrorAs(t, err, &unknown)
		assert.ErrorIs(t, err, together.ErrModelNotFound)
		require.NotEmpty(t, unknown.Suggestions)
		assert.Equal(t, embedModel, unknown.Suggestions[0])
		assert.Contains(t, err.Error(), `did you mean BAAI/bge-large-en-v1.5`)
		assert.Equal(t, 1, srv.Stats().Arrivals, "only the model list was asked for: nothing was embedded")
	})
}

func TestModelListErrors(t *testing.T) {
	for name, rt := range map[string]http.RoundTripper{
		"not JSON": transport.Func(func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
		}),
		"server error": conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultStatus, Status: 401}}}),
	} {
		cat := together.NewCatalog(&http.Client{Transport: rt}, "http://sim.test/v1", 0)
		_, err := cat.Models(context.Background())
		assert.Error(t, err, name)
	}
}

// The list a Catalog returns is the caller's: filtering it in place (as
// slices.DeleteFunc does, zeroing what it drops) does not change what the
// catalog knows.
func TestCatalogListIsTheCallers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		cat := together.NewCatalog(&http.Client{Transport: srv}, "http://sim.test/v1", 0)
		models, err := cat.Models(context.Background())
		require.NoError(t, err)
		require.NotEmpty(t, models)
		chat := slices.DeleteFunc(models, func(m together.Model) bool { return m.ID == embedModel })
		require.Len(t, chat, len(models)-1)

		assert.NoError(t, cat.Check(context.Background(), embedModel), "still in the catalog")
		again, err := cat.Models(context.Background())
		require.NoError(t, err)
		assert.Len(t, again, len(conformance.DefaultModels()))
		assert.Equal(t, 1, srv.Stats().Arrivals, "from the cache")
	})
}

// A model list with no model in it (a 200 of null, [] or {"data": []}, as
// a proxy in front of the API may answer) is no catalog to judge a model
// by: EmbedAll is not refused, and the list is not kept.
func TestAnEmptyModelListIsNotACatalog(t *testing.T) {
	for _, body := range []string{`null`, `[]`, `{"object":"list","data":[]}`} {
		t.Run(body, func(t *testing.T) {
			lists := 0
			base := transport.Func(func(r *http.Request) (*http.Response, error) {
				if r.Body != nil {
					_ = r.Body.Close()
				}
				answer := `{"data":[{"index":0,"embedding":[1,2]}]}`
				if r.Method == http.MethodGet {
					lists++
					answer = body
				}
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(answer))}, nil
			})
			client := &http.Client{Transport: base}
			cat := together.NewCatalog(client, "http://sim.test/v1", 0)
			vecs, err := together.EmbedAll(context.Background(), client, embedModel, []string{"a"},
				together.WithAPIBase("http://sim.test/v1"), together.WithCatalog(cat))
			require.NoError(t, err)
			assert.Equal(t, [][]float32{{1, 2}}, vecs)
			_, err = cat.Models(context.Background())
			assert.Error(t, err)
			assert.Equal(t, 2, lists, "asked again")
		})
	}
}
