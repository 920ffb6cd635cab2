package together_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

func TestModelsAreCachedForClientsOfNewClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		for range 3 {
			models, err := together.Models(context.Background(), client)
			require.NoError(t, err)
			require.Len(t, models, len(conformance.DefaultModels()))
		}
		assert.Equal(t, 1, srv.Stats().Arrivals, "one request for three calls")
		time.Sleep(together.DefaultCatalogTTL)
		_, err := together.Models(context.Background(), client)
		require.NoError(t, err)
		assert.Equal(t, 2, srv.Stats().Arrivals, "asked again once the cache is stale")
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
