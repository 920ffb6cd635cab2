package together_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/together"
)

// Every decorator of the preset logs through one slog logger. The model
// asked is unknown to the (simulated) provider, so the request falls back
// to the next of its chain, which Info shows; waits, retries and finished
// requests are at Debug.
func ExampleWithEvents() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{} // a stable output, for the example
			}
			return a
		},
	}))
	sim := conformance.NewServer(conformance.Config{})
	client := &http.Client{Transport: together.NewTransport(sim,
		together.WithAPIKey("example-key"),
		together.WithFallback("acme/retired-model", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
		together.WithEvents(slogobserve.New(logger)),
	)}

	resp, err := client.Post("https://api.together.xyz/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"acme/retired-model","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Steady-Model"))
	// Output:
	// level=INFO msg="fell back to another model" event="fell back" endpoint=chat model=acme/retired-model from=acme/retired-model to=meta-llama/Llama-3.3-70B-Instruct-Turbo reason="not found"
	// 200 meta-llama/Llama-3.3-70B-Instruct-Turbo
}
