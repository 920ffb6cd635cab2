package transport_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/transport"
)

// modelLogger is a decorator that takes what Inspect read of a request
// beside it: it reads no body, and no copy of the request is made to
// carry the Info to it.
type modelLogger struct{ next http.RoundTripper }

func (m *modelLogger) RoundTrip(req *http.Request) (*http.Response, error) {
	return m.RoundTripInfo(req, transport.InfoOf(req))
}

func (m *modelLogger) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	if info != nil {
		fmt.Println("model:", info.Model, "endpoint:", info.Endpoint)
	}
	return transport.Forward(m.next, req, info)
}

func ExampleInfoRoundTripper() {
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})
	rt := transport.Chain(transport.Base(base), transport.Inspect(),
		func(next http.RoundTripper) http.RoundTripper { return &modelLogger{next} })
	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
		strings.NewReader(`{"messages":[{"role":"user","content":"hi"}],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo"}`))
	if err != nil {
		panic(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		panic(err)
	}
	fmt.Println(resp.StatusCode, resp.Request == req)
	// Output:
	// model: meta-llama/Llama-3.3-70B-Instruct-Turbo endpoint: chat
	// 200 true
}
