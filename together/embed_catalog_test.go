package together_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/preset"
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

// An answer that no later batch can escape (a key refused, a spending
// limit reached, an account out of quota, a model that does not exist)
// stops the run: the batches after it are not sent, each to be refused
// the same way at the key's rate for as long as the corpus takes, and
// their texts are failed with it, for a resume once the key is put right.
func TestEmbedAllStopsAtAnAnswerNoBatchCanEscape(t *testing.T) {
	for name, answer := range map[string]struct {
		status int
		body   string
		is     error
	}{
		"a key refused":           {401, `{"error":{"message":"Invalid API key provided","type":"invalid_request_error"}}`, together.ErrUnauthorized},
		"a spending limit":        {402, `{"error":{"message":"Credit limit exceeded","type":"credit_limit"}}`, together.ErrSpendingLimit},
		"an account out of quota": {429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}`, preset.ErrQuotaExceeded},
		"a model not served":      {404, `{"error":{"message":"Unable to access model BAAI/bge-large-en-v1.5","type":"invalid_request_error","code":"model_not_found"}}`, together.ErrModelNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var arrivals atomic.Int64
				base := transport.Func(func(r *http.Request) (*http.Response, error) {
					_, _ = io.Copy(io.Discard, r.Body)
					_ = r.Body.Close()
					arrivals.Add(1)
					return &http.Response{StatusCode: answer.status, Header: http.Header{"Content-Type": {"application/json"}},
						Request: r, Body: io.NopCloser(strings.NewReader(answer.body))}, nil
				})
				client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"))}
				in := texts(200)
				var done int
				vecs, err := together.EmbedAll(context.Background(), client, embedModel, in,
					together.WithoutModelCheck(), together.WithConcurrency(1),
					together.WithProgress(func(d, total int) { done = d }))
				var partial *together.EmbedError
				require.ErrorAs(t, err, &partial)
				assert.ErrorIs(t, err, answer.is)
				assert.Len(t, partial.Failed, len(in), "every text is failed, none lost")
				assert.Equal(t, len(in), done, "and reported done")
				assert.Len(t, vecs, len(in))
				assert.Equal(t, int64(1), arrivals.Load(), "one batch was refused; the rest were not sent")
			})
		})
	}
}
