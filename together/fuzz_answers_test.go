package together_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// answering is a client whose every request gets status and body.
func answering(status int, body []byte) *http.Client {
	return &http.Client{Transport: transport.Func(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(string(body))), ContentLength: int64(len(body)), Request: r}, nil
	})}
}

// FuzzEmbedAnswer feeds EmbedAll any answer to its embeddings request. It
// must not panic, and the outcome must be all or nothing per request: every
// text gets a vector and no error, or no text gets one and every text is
// named in the EmbedError.
func FuzzEmbedAnswer(f *testing.F) {
	for _, seed := range []string{
		`{"data":[{"index":0,"embedding":[0.1,0.2]},{"index":1,"embedding":[0.3]},{"index":2,"embedding":[1]}]}`,
		`{"data":[{"index":2,"embedding":[0.1]},{"index":1,"embedding":[0.3]},{"index":0,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":[0.1]},{"index":0,"embedding":[0.3]},{"index":1,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":null},{"index":1,"embedding":[]},{"index":2,"embedding":[1]}]}`,
		`{"data":[{"index":-1,"embedding":[0.1]},{"index":3,"embedding":[0.3]},{"index":2,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":[1e39]},{"index":1,"embedding":["x"]},{"index":2}]}`,
		`{"data":[]}`, `{"data":null}`, `[]`, `null`, ``, `{"data":[{"index":0,"embedding":[0.1`,
	} {
		f.Add(200, []byte(seed))
	}
	f.Add(429, []byte(`{"error":{"message":"slow down"}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return
		}
		in := []string{"a", "b", "c"}
		vecs, err := together.EmbedAll(context.Background(), answering(status, body), embedModel, in,
			together.WithoutModelCheck(), together.WithAPIBase("http://sim.test/v1"))
		if len(vecs) != len(in) {
			t.Fatalf("%d vectors for %d texts", len(vecs), len(in))
		}
		if err == nil {
			for i, v := range vecs {
				if v == nil {
					t.Fatalf("no error, but text %d has no vector", i)
				}
			}
			return
		}
		var partial *together.EmbedError
		if !errors.As(err, &partial) {
			t.Fatalf("%T is not an *EmbedError: %v", err, err)
		}
		if len(partial.Failed) != len(in) {
			t.Fatalf("one request failed, but %v are named", partial.Failed)
		}
		for i, v := range vecs {
			if v != nil {
				t.Fatalf("the request failed, but text %d has a vector", i)
			}
		}
	})
}

// FuzzModelsAnswer feeds the model catalog any answer to GET /v1/models,
// and asks it about a model: it must not panic, must refuse a non-2xx
// answer, and must never call a model unknown on a catalog it could not
// read.
func FuzzModelsAnswer(f *testing.F) {
	for _, seed := range []string{
		`[{"id":"meta-llama/Llama-3.3-70B-Instruct-Turbo","object":"model","type":"chat"}]`,
		`{"object":"list","data":[{"id":"BAAI/bge-large-en-v1.5","type":"embedding"}]}`,
		`{"data":null}`, `[]`, `[{"id":""}]`, `[{"id":1}]`, `null`, `{"data":[{"id":"a"},{"id":"a"}]}`,
	} {
		f.Add(200, []byte(seed), "meta-llama/Llama-3.3-70B-Instruct-Turbo")
	}
	f.Add(500, []byte(`oops`), "x")
	f.Fuzz(func(t *testing.T, status int, body []byte, model string) {
		if status < 100 || status > 999 || len(model) > 256 {
			return
		}
		client := answering(status, body)
		_, err := together.Models(context.Background(), client)
		if err == nil && status >= 300 {
			t.Fatalf("status %d accepted", status)
		}
		cat := together.NewCatalog(client, "http://sim.test/v1", 0)
		cerr := cat.Check(context.Background(), model)
		var unknown *together.UnknownModelError
		if errors.As(cerr, &unknown) && err != nil {
			t.Fatalf("a catalog that could not be read calls %q unknown: %v", model, cerr)
		}
	})
}
