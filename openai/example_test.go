package openai_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
)

// The preset in front of a (simulated) OpenAI API: the key is added, the
// limits are learnt from the x-ratelimit-* headers of the first answer.
func ExampleNewTransport() {
	sim := conformance.NewServer(conformance.Config{
		Dialect: conformance.DialectOpenAI,
		Headers: conformance.HeaderOpenAI,
		Models:  []string{"gpt-4o-mini"},
	})
	client := &http.Client{Transport: openai.NewTransport(sim, openai.WithAPIKey("sk-example"))}

	resp, err := client.Post(openai.DefaultBaseURL+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, openai.CheckResponse(resp))
	// Output: 200 <nil>
}

// A key out of credit answers 429 insufficient_quota: no wait makes it
// pass, so the preset returns it at once, never retried, and CheckResponse
// names it apart from a rate limit.
func ExampleCheckResponse_quota() {
	sim := conformance.NewServer(conformance.Config{
		Dialect: conformance.DialectOpenAI,
		Models:  []string{"gpt-4o-mini"},
		Faults:  []conformance.Fault{{Kind: conformance.FaultQuota}},
	})
	var sent int
	counted := func(req *http.Request) (*http.Response, error) { sent++; return sim.RoundTrip(req) }
	client := &http.Client{Transport: openai.NewTransport(roundTripFunc(counted), openai.WithAPIKey("sk-example"))}

	resp, err := client.Post(openai.DefaultBaseURL+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	err = openai.CheckResponse(resp) // reads the error's body and puts it back: the caller still closes it
	fmt.Println(resp.StatusCode, "after", sent, "request")
	fmt.Println(errors.Is(err, openai.ErrQuotaExceeded), errors.Is(err, openai.ErrRateLimited))
	// Output:
	// 429 after 1 request
	// true false
}

// An error body in OpenAI's shape, read into an *APIError.
func ExampleCheckResponse() {
	resp := &http.Response{
		StatusCode: http.StatusNotFound,
		Header:     http.Header{"X-Request-Id": {"req_42"}},
		Body: io.NopCloser(strings.NewReader(
			`{"error":{"message":"The model 'gpt-9' does not exist","type":"invalid_request_error","param":null,"code":"model_not_found"}}`)),
	}
	err := openai.CheckResponse(resp)
	fmt.Println(err)
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Code, errors.Is(err, openai.ErrModelNotFound))
	}
	// Output:
	// openai: 404 Not Found (invalid_request_error): The model 'gpt-9' does not exist [request req_42]
	// model_not_found true
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
