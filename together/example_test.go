package together_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

func ExampleEmbedAll() {
	// The simulated provider stands in for api.together.xyz.
	sim := conformance.NewServer(conformance.Config{})
	client := &http.Client{Transport: together.NewTransport(sim,
		together.WithAPIKey("example-key"), together.WithBaseURL("https://api.together.xyz/v1"))}

	vecs, err := together.EmbedAll(context.Background(), client, "BAAI/bge-large-en-v1.5",
		[]string{"first text", "second text", "third text"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(vecs), "vectors of", len(vecs[0]), "dimensions")
	// Output: 3 vectors of 8 dimensions
}

func ExampleCheckResponse() {
	resp := &http.Response{
		StatusCode: http.StatusTooManyRequests,
		Header:     http.Header{"X-Request-Id": {"req-42"}},
		Body: io.NopCloser(strings.NewReader(
			`{"error":{"message":"Rate limit exceeded","type":"dynamic_request_limited"}}`)),
	}
	err := together.CheckResponse(resp)
	fmt.Println(err)
	fmt.Println(errors.Is(err, together.ErrRateLimited))
	// Output:
	// together: 429 Too Many Requests (dynamic_request_limited): Rate limit exceeded [request req-42]
	// true
}

func ExampleWithFallback() {
	sim := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{
		Kind: conformance.FaultStatus, Status: http.StatusServiceUnavailable,
		Model: "meta-llama/Llama-3.3-70B-Instruct-Turbo", // overloaded
	}}})
	client := &http.Client{Transport: together.NewTransport(sim, together.WithAPIKey("example-key"),
		together.WithMaxRetries(0), // no retries: fall back at once
		together.WithFallback("meta-llama/Llama-3.3-70B-Instruct-Turbo", "mistralai/Mixtral-8x7B-Instruct-v0.1"))}

	resp, err := client.Post("https://api.together.xyz/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Steady-Model"))
	// Output: 200 mistralai/Mixtral-8x7B-Instruct-v0.1
}
