package conformance_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// OpenAI's embeddings and completions take their input as token ids too:
// one array of integers, or an array of such arrays. The server answers
// them as the provider does, one vector per array, each id one token.
func TestServerTakesInputsGivenAsTokenIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		var e struct {
			Data []struct {
				Embedding []float64 `json:"embedding"`
			} `json:"data"`
			Usage struct {
				PromptTokens int `json:"prompt_tokens"`
			} `json:"usage"`
		}
		for _, tt := range []struct {
			input   string
			vectors int
			tokens  int
		}{{`[1,2,3]`, 1, 3}, {`[[1,2,3],[4,5],[1,2,3]]`, 3, 8}} {
			r := srvDo(t, srv, http.MethodPost, "/v1/embeddings", "k", `{"model":"`+srvEmbedModel+`","input":`+tt.input+`}`)
			require.Equal(t, http.StatusOK, r.status, "input %s: %s", tt.input, r.body)
			require.NoError(t, json.Unmarshal([]byte(r.body), &e))
			assert.Len(t, e.Data, tt.vectors, tt.input)
			assert.Equal(t, tt.tokens, e.Usage.PromptTokens, tt.input)
		}
		assert.Equal(t, e.Data[0].Embedding, e.Data[2].Embedding, "the same tokens, the same vector")
		assert.NotEqual(t, e.Data[0].Embedding, e.Data[1].Embedding)

		r := srvDo(t, srv, http.MethodPost, "/v1/completions", "k", `{"model":"`+srvChatModel+`","prompt":[10,20,30,40,50]}`)
		require.Equal(t, http.StatusOK, r.status, r.body)
		assert.Contains(t, r.body, `"prompt_tokens":5`)

		// A chat message's content is text, never token ids.
		r = srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", `{"model":"`+srvChatModel+`","messages":[{"role":"user","content":[1,2]}]}`)
		assert.Equal(t, http.StatusBadRequest, r.status, r.body)
	})
}
