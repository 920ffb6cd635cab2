package anthropic_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/conformance"
)

// A model that answers 529 overloaded_error is fallen back from: the
// request is served by the next model of its chain, which the
// Steady-Model header of the answer names. The preset adds the key and
// the anthropic-version header.
func ExampleWithFallback() {
	sim := conformance.NewServer(conformance.Config{
		Dialect: conformance.DialectAnthropic,
		Headers: conformance.HeaderAnthropic,
		Models:  []string{"claude-opus-4-1", "claude-sonnet-4-5"},
		Faults:  []conformance.Fault{{Kind: conformance.FaultStatus, Status: 529, Model: "claude-opus-4-1"}},
	})
	client := &http.Client{Transport: anthropic.NewTransport(sim,
		anthropic.WithAPIKey("sk-ant-example"),
		anthropic.WithMaxRetries(0), // no retries: fall back at once
		anthropic.WithFallback("claude-opus-4-1", "claude-sonnet-4-5"))}

	resp, err := client.Post(anthropic.DefaultBaseURL+"/messages", "application/json", strings.NewReader(
		`{"model":"claude-opus-4-1","max_tokens":256,"messages":[{"role":"user","content":"Hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Steady-Model"))
	// Output: 200 claude-sonnet-4-5
}

// An error body in Anthropic's shape, read into an *APIError.
func ExampleCheckResponse() {
	resp := &http.Response{
		StatusCode: 529,
		Header:     http.Header{"Request-Id": {"req_011"}},
		Body: io.NopCloser(strings.NewReader(
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`)),
	}
	err := anthropic.CheckResponse(resp)
	fmt.Println(err)
	fmt.Println(errors.Is(err, anthropic.ErrOverloaded))
	// Output:
	// anthropic: 529 (overloaded_error): Overloaded [request req_011]
	// true
}
