package together_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// refusingServer is an embeddings server that refuses, with status and
// Together's message, every request holding a text refuse says is bad,
// and embeds the others. It records each request's texts and whether they
// were embedded (and so billed).
type refusingServer struct {
	status int
	refuse func(text string) bool

	mu       sync.Mutex
	requests int
	embedded map[string]int // text → times embedded
}

func (s *refusingServer) client(opts ...together.Option) *http.Client {
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		var in struct{ Input []string }
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(body, &in); err != nil {
			return nil, err
		}
		answer := func(status int, body string) (*http.Response, error) {
			return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
				Body: io.NopCloser(strings.NewReader(body))}, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests++
		for _, text := range in.Input {
			if s.refuse(text) {
				return answer(s.status, `{"error":{"message":"Input validation error: inputs must have less than 512 tokens. Given: 700","type":"invalid_request_error"}}`)
			}
		}
		if s.embedded == nil {
			s.embedded = map[string]int{}
		}
		var out strings.Builder
		out.WriteString(`{"object":"list","data":[`)
		for i, text := range in.Input {
			s.embedded[text]++
			if i > 0 {
				out.WriteByte(',')
			}
			fmt.Fprintf(&out, `{"object":"embedding","index":%d,"embedding":[%d,1]}`, i, len(text))
		}
		out.WriteString(`]}`)
		return answer(http.StatusOK, out.String())
	})
	opts = append([]together.Option{together.WithAPIKey("k")}, opts...)
	return &http.Client{Transport: together.NewTransport(base, opts...)}
}

// A text the server refuses (an input too long for the model) costs its
// batch nothing: the batch is split until the text is alone, the others
// are embedded, each once, and the EmbedError names the text with the
// server's message. The extra requests are a few a refused text.
func TestEmbedAllEmbedsTheRestOfABatchWithARefusedText(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				in := texts(45) // batches of 20, 20 and 5
				in[7] = strings.Repeat("long ", 700)
				in[31] = ""
				srv := &refusingServer{status: status, refuse: func(s string) bool { return s == "" || len(s) > 2000 }}
				vecs, err := together.EmbedAll(context.Background(), srv.client(), embedModel, in, together.WithoutModelCheck())

				var partial *together.EmbedError
				require.ErrorAs(t, err, &partial)
				assert.Equal(t, []int{7, 31}, partial.Failed, "only the refused texts fail")
				require.Len(t, partial.Refused, 2)
				for j, i := range []int{7, 31} {
					assert.Equal(t, i, partial.Refused[j].Index)
					var api *together.APIError
					require.ErrorAs(t, partial.Refused[j], &api)
					assert.Equal(t, status, api.StatusCode)
					assert.Contains(t, api.Message, "inputs must have less than 512 tokens")
				}
				var first *together.TextRefusedError
				require.ErrorAs(t, err, &first, "the first failure names its text")
				assert.Regexp(t, `text (7|31) refused`, err.Error(), "whichever was refused first")
				assert.ErrorContains(t, err, "inputs must have less than 512 tokens")
				assert.ErrorContains(t, err, "texts refused: 7, 31")

				for i, v := range vecs {
					if i == 7 || i == 31 {
						assert.Nil(t, v, "text %d", i)
						continue
					}
					assert.Equal(t, []float32{float32(len(in[i])), 1}, v, "text %d", i)
					assert.Equal(t, 1, srv.embedded[in[i]], "text %d is embedded, and billed, once", i)
				}
				// 3 batches, and at most 2 requests a halving for each refused
				// text: 20 texts are halved at most 5 times.
				assert.LessOrEqual(t, srv.requests, 3+2*2*5)
			})
		})
	}
}

// A resume after a refused text sends the refused text alone once more, not
// with the others: they were embedded.
func TestEmbedAllResumesOnlyTheRefusedTexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := texts(20)
		in[3] = ""
		srv := &refusingServer{status: http.StatusBadRequest, refuse: func(s string) bool { return s == "" }}
		client := srv.client()
		vecs, err := together.EmbedAll(context.Background(), client, embedModel, in, together.WithoutModelCheck())
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Equal(t, []int{3}, partial.Failed)

		before := srv.requests
		_, err = together.EmbedAll(context.Background(), client, embedModel, in, together.WithoutModelCheck(), together.WithResume(vecs))
		require.ErrorAs(t, err, &partial)
		assert.Equal(t, []int{3}, partial.Failed)
		assert.Equal(t, 1, srv.requests-before, "the refused text alone is sent again")
	})
}

// A server that refuses every request (a proxy's rule, a parameter of the
// model) is not asked once a text: the splitting is bounded to as many
// requests again as the run has batches, plus those that isolating two
// texts takes; past it, a refused batch fails whole, with the server's
// answer.
func TestEmbedAllBoundsTheSplittingOfRefusedBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := &refusingServer{status: http.StatusBadRequest, refuse: func(string) bool { return true }}
		in := texts(200) // 10 batches
		vecs, err := together.EmbedAll(context.Background(), srv.client(), embedModel, in, together.WithoutModelCheck())
		var partial *together.EmbedError
		require.ErrorAs(t, err, &partial)
		assert.Len(t, partial.Failed, len(in), "every text is named")
		assert.Equal(t, make([][]float32, len(in)), vecs)
		var api *together.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, http.StatusBadRequest, api.StatusCode)
		assert.LessOrEqual(t, srv.requests, 10+10+2*2*5, "at most twice the batches, and two texts' isolation")
		assert.Greater(t, srv.requests, 10, "refused batches are split")
	})
}

// Failures that are not about a text are not split: a refused key, model
// or account would refuse every half too, and a 429 or 5xx is the
// server's, retried (here, with retries off, failed as it is).
func TestEmbedAllDoesNotSplitABatchForFailuresOfTheRun(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
	}{
		{http.StatusUnauthorized, `{"error":{"message":"invalid api key"}}`},
		{http.StatusPaymentRequired, `{"error":{"message":"spending limit reached"}}`},
		{http.StatusNotFound, `{"error":{"message":"model not found","code":"model_not_found"}}`},
		{http.StatusBadRequest, `{"error":{"message":"Your credit balance is too low"}}`},
		{http.StatusTooManyRequests, `{"error":{"message":"slow down"}}`},
		{http.StatusInternalServerError, `{"error":{"message":"oops"}}`},
		{http.StatusServiceUnavailable, `{"error":{"message":"overloaded"}}`},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var mu sync.Mutex
				requests := 0
				base := transport.Func(func(r *http.Request) (*http.Response, error) {
					_ = r.Body.Close()
					mu.Lock()
					requests++
					mu.Unlock()
					return &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}, Request: r,
						Body: io.NopCloser(strings.NewReader(tc.body))}, nil
				})
				client := &http.Client{Transport: together.NewTransport(base, together.WithAPIKey("k"), together.WithMaxRetries(0))}
				_, err := together.EmbedAll(context.Background(), client, embedModel, texts(40),
					together.WithoutModelCheck(), together.WithConcurrency(1))
				var partial *together.EmbedError
				require.ErrorAs(t, err, &partial)
				assert.Len(t, partial.Failed, 40)
				assert.Empty(t, partial.Refused)
				assert.LessOrEqual(t, requests, 2, "one request a batch at most")
			})
		})
	}
}
