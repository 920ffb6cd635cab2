// Command openai sends chat completions through the official openai-go SDK
// with steady's OpenAI preset underneath: the SDK's own retries off,
// steady's limiter (its rates learnt from the first answer), retries,
// breakers and fallback on.
//
//	go run ./examples/openai          # against the simulated provider on loopback
//	go run ./examples/openai -live    # against OpenAI (needs OPENAI_API_KEY)
//
// The simulated key allows 600 requests a minute and fails a tenth of
// them with a 500, which steady retries; its last request is sent for a
// model whose account is out of quota, which steady returns at once.
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
	"sync/atomic"
	"time"

	openaisdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/transport"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "openai:", err)
		os.Exit(1)
	}
}

// quotaModel is the simulated model whose account is out of quota.
const quotaModel = "gpt-out-of-quota"

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("openai", flag.ContinueOnError)
	live := fs.Bool("live", false, "send to the real OpenAI API (needs OPENAI_API_KEY)")
	n := fs.Int("n", 30, "requests to send at once")
	model := fs.String("model", "gpt-4o-mini", "chat model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return fmt.Errorf("-n must be positive, not %d", *n)
	}

	baseURL, key := openai.DefaultBaseURL, os.Getenv("OPENAI_API_KEY")
	if *live && key == "" {
		return errors.New("-live needs OPENAI_API_KEY")
	}
	if !*live {
		sim := conformance.NewServer(conformance.Config{
			Dialect: conformance.DialectOpenAI,
			Headers: conformance.HeaderOpenAI,
			Models:  []string{*model, quotaModel},
			Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 600, Burst: 600, TPM: 200000, TokenBurst: 200000}},
			Faults: []conformance.Fault{
				{Kind: conformance.FaultQuota, Model: quotaModel},
				{Kind: conformance.FaultStatus, Status: 500, Share: 0.1},
			},
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

	var retries, learnt atomic.Int64
	client := openaisdk.NewClient(
		option.WithBaseURL(baseURL+"/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(openai.NewClient( // steady underneath
			openai.WithBaseURL(baseURL),
			openai.WithEvents(func(e transport.Event) {
				switch {
				case e.Kind == transport.EventRetry:
					retries.Add(1)
				case e.Kind == transport.EventRateChanged && e.Reason == "requests":
					learnt.Store(int64(e.Rate * 60))
				}
			}))),
		option.WithMaxRetries(0), // steady retries; the SDK does not
	)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, *n)
	for i := range *n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, errs[i] = client.Chat.Completions.New(ctx, openaisdk.ChatCompletionNewParams{
				Model:    *model,
				Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage(fmt.Sprintf("Say %d.", i))},
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
	fmt.Fprintf(stdout, "%d chat completions through openai-go in %v, %d failed, %d retried by steady\n",
		*n, time.Since(start).Round(10*time.Millisecond), failed, retries.Load())
	if r := learnt.Load(); r > 0 {
		fmt.Fprintf(stdout, "the limit learnt from the first answer: %d requests a minute\n", r)
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	if *live {
		return nil
	}
	// An account out of quota: a 429 that no wait cures, returned at once.
	start = time.Now()
	_, err := client.Chat.Completions.New(context.Background(), openaisdk.ChatCompletionNewParams{
		Model: quotaModel, Messages: []openaisdk.ChatCompletionMessageParamUnion{openaisdk.UserMessage("Hi.")},
	})
	var apiErr *openaisdk.Error
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("out of quota: want the SDK's error, got %v", err)
	}
	fmt.Fprintf(stdout, "out of quota: %d %s after %v, not retried\n", apiErr.StatusCode, apiErr.Code,
		time.Since(start).Round(10*time.Millisecond))
	return nil
}
