// Command provider serves the simulated provider of package conformance
// over HTTP, so that any client, SDK or curl can be pointed at a server
// that limits, refuses and fails as Together does:
//
//	go run ./conformance/cmd/provider -addr 127.0.0.1:8080 -chat-rpm 60 -headers openai
//	go run ./conformance/cmd/provider -chat-rpm 600 -algorithm nginx -burst 1 -headers none
//	go run ./conformance/cmd/provider -chat-rpm 600 -algorithm fixed -window 10s -from-first -headers none,retry-after,draft-8
//	curl -H 'Authorization: Bearer k' http://127.0.0.1:8080/v1/chat/completions \
//		-d '{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}]}'
//
// It prints the address it listens on and serves until interrupted, then
// shuts down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/steadyapi/steady/conformance"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "provider:", err)
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done, and then shuts the server
// down, letting answers in progress finish for a few seconds.
func run(ctx context.Context, args []string, out io.Writer) error {
	cfg, addr, err := parse(args)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: conformance.NewServer(cfg), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(out, "provider listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) { // hung answers: cut them off
		err = hs.Close()
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// parse turns the command line into the server's Config and address.
func parse(args []string) (conformance.Config, string, error) {
	fs := flag.NewFlagSet("provider", flag.ContinueOnError)
	var (
		addr      = fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
		chat      = fs.Float64("chat-rpm", 600, "chat and completions requests per minute per key (0: unlimited)")
		embed     = fs.Float64("embeddings-rpm", 300, "embeddings requests per minute per key (0: unlimited)")
		images    = fs.Float64("images-rpm", 60, "image requests per minute per key (0: unlimited)")
		tpm       = fs.Float64("tpm", 0, "chat and completions tokens per minute per key (0: unlimited)")
		algorithm = fs.String("algorithm", "", "how limits are enforced: bucket (per second, as Together), nginx (limit_req), sliding (a log over -window) or fixed (windows of -window); empty: as -window says")
		window    = fs.Duration("window", time.Second, "without -algorithm, 1s (a per-second bucket) or 1m (fixed minute windows); with sliding or fixed, the window's length")
		burst     = fs.Float64("burst", 0, "the requests a bucket lets through at once (0: one second of the rate; nginx's burst=B nodelay is B+1)")
		fromFirst = fs.Bool("from-first", false, "fixed windows start with a key's first request, as express-rate-limit's, not on the clock")
		dynamic   = fs.Bool("dynamic", false, "Together's dynamic limit: twice the past hour's successful rate, within -base and -cap")
		span      = fs.String("span", "hour", "what the dynamic limit averages over while the key is younger than an hour: hour or in-use")
		base      = fs.Float64("base", 0, "the dynamic limit's floor in RPM (0: the endpoint's RPM)")
		limitCap  = fs.Float64("cap", 0, "the dynamic limit's ceiling in RPM (0: none)")
		headers   = fs.String("headers", "together", "rate headers: together, or a comma-separated list of every, retry-after, openai, anthropic, none, legacy, draft-6, draft-7, draft-8")
		seed      = fs.Int64("seed", 1, "seed of every random choice")
		latency   = fs.Duration("latency", 0, "service time of each answer")
		jitter    = fs.Duration("jitter", 0, "random extra service time, up to this")
		overload  = fs.Float64("overload", 0, "share of requests answered 503 (0 to 1)")
		streamGap = fs.Duration("stream-interval", 0, "pause between streamed events")
		dialect   = fs.String("dialect", "together", "the provider it speaks as: together, openai or anthropic (its errors, token counting, per-model limits; -chat-rpm and -tpm also limit Anthropic's /v1/messages)")
		models    = fs.String("models", "", "comma-separated model names it serves (empty: the defaults)")
	)
	if err := fs.Parse(args); err != nil {
		return conformance.Config{}, "", err
	}
	algorithms := map[string]conformance.Algorithm{
		"": conformance.DefaultAlgorithm, "bucket": conformance.TokenBucket, "nginx": conformance.LeakyBucket,
		"sliding": conformance.SlidingLog, "fixed": conformance.FixedWindow,
	}
	alg, ok := algorithms[*algorithm]
	switch {
	case !ok:
		return conformance.Config{}, "", fmt.Errorf("unknown -algorithm %q", *algorithm)
	case alg == conformance.DefaultAlgorithm && *window != time.Second && *window != time.Minute:
		return conformance.Config{}, "", fmt.Errorf("-window must be 1s or 1m without -algorithm, not %v", *window)
	case *window <= 0:
		return conformance.Config{}, "", fmt.Errorf("-window must be positive, not %v", *window)
	}
	// A negative or NaN rate is not "unlimited" (0 is): refuse it rather than
	// serve without the limit asked for.
	for _, f := range []struct {
		name string
		v    float64
	}{{"chat-rpm", *chat}, {"embeddings-rpm", *embed}, {"images-rpm", *images}, {"tpm", *tpm},
		{"burst", *burst}, {"base", *base}, {"cap", *limitCap}, {"overload", *overload}} {
		if !(f.v >= 0) || math.IsInf(f.v, 1) {
			return conformance.Config{}, "", fmt.Errorf("-%s must be a number of at least 0, not %v", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"latency", *latency}, {"jitter", *jitter}, {"stream-interval", *streamGap}} {
		if f.v < 0 {
			return conformance.Config{}, "", fmt.Errorf("-%s must not be negative, not %v", f.name, f.v)
		}
	}
	spans := map[string]conformance.Span{"hour": conformance.SpanHour, "in-use": conformance.SpanInUse}
	sp, ok := spans[*span]
	if !ok {
		return conformance.Config{}, "", fmt.Errorf("-span must be hour or in-use, not %q", *span)
	}
	if *overload > 1 {
		return conformance.Config{}, "", fmt.Errorf("-overload must be within 0 and 1, not %v", *overload)
	}
	dialects := map[string]conformance.Dialect{"together": conformance.DialectTogether,
		"openai": conformance.DialectOpenAI, "anthropic": conformance.DialectAnthropic}
	d, ok := dialects[*dialect]
	if !ok {
		return conformance.Config{}, "", fmt.Errorf("-dialect must be together, openai or anthropic, not %q", *dialect)
	}
	cfg := conformance.Config{
		Dialect:        d,
		Seed:           *seed,
		Limits:         map[string]conformance.Limit{},
		Latency:        *latency,
		LatencyJitter:  *jitter,
		StreamInterval: *streamGap,
	}
	for _, l := range []struct {
		endpoint string
		rpm, tpm float64
	}{
		{conformance.Chat, *chat, *tpm},
		{conformance.Completions, *chat, *tpm},
		{conformance.Messages, *chat, *tpm},
		{conformance.Embeddings, *embed, 0},
		{conformance.Images, *images, 0},
	} {
		if l.rpm > 0 || l.tpm > 0 || *dynamic {
			cfg.Limits[l.endpoint] = conformance.Limit{
				RPM: l.rpm, TPM: l.tpm, Algorithm: alg, Window: *window, Burst: *burst, FromFirstRequest: *fromFirst,
				Dynamic: *dynamic, Span: sp, Base: *base, Cap: *limitCap,
			}
		}
	}
	if *models != "" {
		for _, m := range strings.Split(*models, ",") {
			if m = strings.TrimSpace(m); m != "" {
				cfg.Models = append(cfg.Models, m)
			}
		}
	}
	for _, h := range strings.Split(*headers, ",") {
		switch strings.TrimSpace(h) {
		case "together", "":
		case "every":
			cfg.Headers |= conformance.HeaderEveryAnswer
		case "retry-after":
			cfg.Headers |= conformance.HeaderRetryAfter
		case "openai":
			cfg.Headers |= conformance.HeaderOpenAI
		case "anthropic":
			cfg.Headers |= conformance.HeaderAnthropic
		case "none":
			cfg.Headers |= conformance.HeaderNoReset
		case "legacy":
			cfg.Headers |= conformance.HeaderLegacy
		case "draft-6":
			cfg.Headers |= conformance.HeaderDraft6
		case "draft-7":
			cfg.Headers |= conformance.HeaderDraft7
		case "draft-8":
			cfg.Headers |= conformance.HeaderDraft8
		default:
			return conformance.Config{}, "", fmt.Errorf("unknown -headers style %q", h)
		}
	}
	if *overload > 0 {
		cfg.Faults = []conformance.Fault{{Kind: conformance.FaultStatus, Status: http.StatusServiceUnavailable, Share: *overload}}
	}
	return cfg, *addr, nil
}
