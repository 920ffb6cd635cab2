// Command anthropic sends messages, half of them streamed, through the
// official anthropic-sdk-go with steady's Anthropic preset underneath: the
// SDK's own retries off; steady's limiters of requests, input tokens and
// output tokens (their limits learnt from the first answer), retries of
// 529 overloaded, breakers and fallback on.
//
//	go run ./examples/anthropic          # against the simulated provider on loopback
//	go run ./examples/anthropic -live    # against Anthropic (needs ANTHROPIC_API_KEY)
//
// The simulated key allows 600 requests and 6,000 output tokens a minute,
// and answers a tenth of the requests 529 (overloaded), which steady
// retries after the server's retry-after. Until the first answers report
// their usage, the output limiter charges each request the max_tokens it
// allows (256), so the first wave of 20 fits the minute's 6,000.
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

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "anthropic:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("anthropic", flag.ContinueOnError)
	live := fs.Bool("live", false, "send to the real Anthropic API (needs ANTHROPIC_API_KEY)")
	n := fs.Int("n", 20, "messages to send at once")
	model := fs.String("model", "claude-sonnet-4-5", "model")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 {
		return fmt.Errorf("-n must be positive, not %d", *n)
	}

	root, key := "https://api.anthropic.com", os.Getenv("ANTHROPIC_API_KEY")
	if *live && key == "" {
		return errors.New("-live needs ANTHROPIC_API_KEY")
	}
	if !*live {
		sim := conformance.NewServer(conformance.Config{
			Dialect: conformance.DialectAnthropic,
			Headers: conformance.HeaderAnthropic | conformance.HeaderRetryAfter,
			Models:  []string{*model},
			Limits: map[string]conformance.Limit{conformance.Messages: {RPM: 600, Burst: 600,
				TPM: 100000, TokenBurst: 100000, OutputTPM: 6000, OutputTokenBurst: 6000}},
			Faults:  []conformance.Fault{{Kind: conformance.FaultStatus, Status: 529, Share: 0.1}},
			Latency: 50 * time.Millisecond,
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		root, key = "http://"+ln.Addr().String(), "simulated-key"
	}

	var retries atomic.Int64
	client := anthropicsdk.NewClient(
		option.WithBaseURL(root+"/"),
		option.WithAPIKey(key),
		option.WithHTTPClient(anthropic.NewClient( // steady underneath
			anthropic.WithBaseURL(root+"/v1"),
			anthropic.WithEvents(func(e transport.Event) {
				if e.Kind == transport.EventRetry {
					retries.Add(1)
				}
			}))),
		option.WithMaxRetries(0), // steady retries; the SDK does not
	)

	start := time.Now()
	var wg sync.WaitGroup
	var output atomic.Int64
	errs := make([]error, *n)
	for i := range *n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			params := anthropicsdk.MessageNewParams{
				Model:     anthropicsdk.Model(*model),
				MaxTokens: 256,
				Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(fmt.Sprintf("Say %d.", i)))},
			}
			if i%2 == 0 {
				m, err := client.Messages.New(ctx, params)
				if err == nil {
					output.Add(m.Usage.OutputTokens)
				}
				errs[i] = err
				return
			}
			stream := client.Messages.NewStreaming(ctx, params)
			var m anthropicsdk.Message
			for stream.Next() {
				if err := m.Accumulate(stream.Current()); err != nil {
					errs[i] = err
					return
				}
			}
			output.Add(m.Usage.OutputTokens)
			errs[i] = stream.Err()
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
	fmt.Fprintf(stdout, "%d messages through anthropic-sdk-go in %v, %d failed, %d retried by steady, %d output tokens\n",
		*n, time.Since(start).Round(10*time.Millisecond), failed, retries.Load(), output.Load())
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}
