package transport_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestEndpoint(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/chat/completions":             transport.EndpointChat,
		"/openai/v1/chat/completions/":     transport.EndpointChat,
		"/v1/completions":                  transport.EndpointCompletions,
		"/v1/embeddings":                   transport.EndpointEmbeddings,
		"/v1/images/generations":           transport.EndpointImages,
		"/v1/fine-tunes":                   transport.EndpointFineTunes,
		"/v1/fine-tunes/ft-1/cancel":       transport.EndpointFineTunes,
		"/v1/fine_tuning/jobs":             transport.EndpointFineTunes,
		"/v1/batches":                      transport.EndpointBatches,
		"/v1/batches/b-1":                  transport.EndpointBatches,
		"/v1/models":                       transport.EndpointModels,
		"/v1/models/meta-llama/Llama-3-8b": transport.EndpointModels,
		"/v1/messages":                     transport.EndpointMessages,
		"/v1/messages/batches":             transport.EndpointBatches,
		"/v1/messages/count_tokens":        transport.EndpointOther,
		"/v1/responses":                    transport.EndpointResponses,
		"/v1/files":                        transport.EndpointOther,
		"/":                                transport.EndpointOther,
		"":                                 transport.EndpointOther,
	} {
		req, err := http.NewRequest("GET", "http://api.test"+path, nil)
		require.NoError(t, err)
		assert.Equal(t, want, transport.Endpoint(req), path)
	}
}

// A request without a URL is an error for net/http, not a panic: the
// decorators that name its endpoint pass it on for the base transport to
// refuse.
func TestEndpointOfARequestWithoutURL(t *testing.T) {
	assert.Equal(t, transport.EndpointOther, transport.Endpoint(&http.Request{Method: "GET"}))
	assert.Equal(t, transport.EndpointOther, transport.Endpoint(nil))
	rt := transport.Route(nil, map[string]transport.Middleware{transport.EndpointChat: counting(new(int), new(int))})(http.DefaultTransport)
	resp, err := rt.RoundTrip(&http.Request{Method: "GET", Header: http.Header{}})
	assert.Nil(t, resp)
	assert.Error(t, err, "net/http's own error")
}

// counting returns a middleware that counts the requests it sees, and how
// many times it was applied.
func counting(seen, built *int) transport.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		*built++
		return transport.Func(func(r *http.Request) (*http.Response, error) {
			*seen++
			return next.RoundTrip(r)
		})
	}
}

func TestRoute(t *testing.T) {
	var chat, chatBuilt, other, otherBuilt int
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	rt := transport.Chain(base, transport.Route(nil, map[string]transport.Middleware{
		transport.EndpointChat:    counting(&chat, &chatBuilt),
		transport.EndpointOther:   counting(&other, &otherBuilt),
		transport.EndpointBatches: nil,
	}))
	for _, path := range []string{"/v1/chat/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/batches"} {
		req, _ := http.NewRequest("POST", "http://api.test"+path, nil)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
	}
	assert.Equal(t, 2, chat)
	assert.Equal(t, 2, other, "embeddings and the nil batches route fall to the other route")
	assert.Equal(t, 1, chatBuilt, "each route is built once")
	assert.Equal(t, 1, otherBuilt)
}

func TestRouteCustomClassifierWithoutDefault(t *testing.T) {
	var a, built int
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 201, Body: http.NoBody}, nil
	})
	rt := transport.Route(func(r *http.Request) string { return r.Method },
		map[string]transport.Middleware{"POST": counting(&a, &built)})(base)
	for _, m := range []string{"POST", "GET"} {
		req, _ := http.NewRequest(m, "http://api.test/", nil)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, 201, resp.StatusCode)
	}
	assert.Equal(t, 1, a)
}
