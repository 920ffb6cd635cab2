package preset_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

// A provider without a preset of its own is a Spec: here an
// OpenAI-compatible API whose chat endpoint allows 60 requests a minute,
// served by the simulated provider.
func ExampleNew() {
	srv := httptest.NewServer(conformance.NewServer(conformance.Config{Models: []string{"llama-3.1-8b-instant"}}))
	defer srv.Close()

	spec := preset.Spec{
		Name:    "groq",
		BaseURL: "https://api.groq.com/openai/v1",
		KeyEnv:  "GROQ_API_KEY",
		Auth:    preset.Bearer,
		Routes: map[string]preset.Route{
			transport.EndpointChat: {Limit: true, RPM: 60, Breaker: true, Fallback: true},
		},
	}
	client := &http.Client{Transport: preset.New(spec, nil, preset.WithAPIKey("gsk-example"), preset.WithBaseURL(srv.URL+"/v1"))}

	resp, err := client.Post(spec.BaseURL+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"llama-3.1-8b-instant","messages":[{"role":"user","content":"Hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	if err := preset.CheckResponse(resp, spec.Name); err != nil {
		fmt.Println(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode)
	// Output: 200
}
