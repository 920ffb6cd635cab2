package together_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// The model check is a courtesy before the run: a catalog that does not
// answer (a /models that hangs) costs EmbedAll a few seconds, after which
// it embeds unchecked, not the caller's whole deadline and every text.
func TestEmbedAllEmbedsWhenTheCatalogDoesNotAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := transport.Func(func(r *http.Request) (*http.Response, error) {
			if strings.HasSuffix(r.URL.Path, "/models") {
				<-r.Context().Done() // a catalog that never answers
				return nil, r.Context().Err()
			}
			var in struct{ Input []string }
			body, err := io.ReadAll(r.Body)
			_ = r.Body.Close()
			if err != nil {
				return nil, err
			}
			if err := json.Unmarshal(body, &in); err != nil {
				return nil, err
			}
			return &http.Response{StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
				Request: r, Body: io.NopCloser(strings.NewReader(embedAnswer(len(in.Input), 8)))}, nil
		})
		client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := time.Now()
		vecs, err := together.EmbedAll(ctx, client, embedModel, texts(50))
		require.NoError(t, err)
		for i, v := range vecs {
			assert.NotNil(t, v, "text %d", i)
		}
		assert.LessOrEqual(t, time.Since(start), time.Minute, "the check gave up well before the deadline")
	})
}
