// Command openai sends chat completions through the official openai-go SDK
// with steady's Together transport underneath: the SDK's own retries off,
// steady's limiter, retries, breakers and fallback on.
//
//	go run ./examples/openai          # against the simulated provider on loopback
//	go run ./examples/openai -live    # against Together (needs TOGETHER_API_KEY)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "openai:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("openai", flag.ContinueOnError)
	live := fs.Bool("live", false, "send to the real Together API (needs TOGETHER_API_KEY)")
	n := fs.Int("n", 30, "requests to send at once")
	model := fs.String("model", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "chat model")
	if err := fs.Parse(args); err != nil {
		return err
	}

	baseURL, key := together.DefaultBaseURL, os.Getenv("TOGETHER_API_KEY")
	if *live && key == "" {
		return errors.New("-live needs TOGETHER_API_KEY")
	}
	if !*live {
		// A key limited to 10 requests a second: 30 at once must be paced.
		sim := conformance.NewServer(conformance.Config{
			Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 600}},
			Latency: 50 * time.Millisecond,
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		baseURL, key = "http://"+ln.Addr().String()+"/v1", "simulated-key"
	}

	client := openai.NewClient(
		option.WithBaseURL(baseURL+"/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(together.NewClient()), // steady underneath
		option.WithMaxRetries(0),                    // steady retries; the SDK does not
	)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, *n)
	for i := range *n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = client.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model:    *model,
				Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(fmt.Sprintf("Say %d.", i))},
			})
		})
	}
	wg.Wait()
	failed := 0
	for _, err := range errs {
		if err != nil {
			failed++
			fmt.Fprintln(stdout, "error:", err)
		}
	}
	fmt.Fprintf(stdout, "%d chat completions through openai-go in %v, %d failed\n",
		*n, time.Since(start).Round(10*time.Millisecond), failed)
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}
