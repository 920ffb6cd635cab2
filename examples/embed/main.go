// Command embed embeds a corpus through steady's Together client: the batch
// job of Together's rate-limit guide, done at the rate the key allows.
//
// By default it starts the simulated provider (package conformance) on
// loopback and embeds a built-in sample against it, so it runs anywhere in
// under 30 seconds:
//
//	go run ./examples/embed
//	go run ./examples/embed -tier 60 -rate 600 -n 400   # a key told 600 RPM that really has 60
//	go run ./examples/embed notes.txt README.md          # one text per non-empty line
//
// With TOGETHER_API_KEY set and -live it embeds against the real API.
package main

import (
	"bufio"
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
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

type options struct {
	n       int
	tier    float64
	rate    float64
	batch   int
	model   string
	live    bool
	quiet   bool
	latency time.Duration
	queries time.Duration
	files   []string
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("embed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.n, "n", 2000, "number of sample texts, when no files are given")
	fs.Float64Var(&o.tier, "tier", together.DefaultEmbeddingsRPM, "the simulated key's real embeddings limit, requests a minute")
	fs.Float64Var(&o.rate, "rate", together.DefaultEmbeddingsRPM, "the limit the client is told, requests a minute (0: unknown, found by slow start)")
	fs.IntVar(&o.batch, "batch", together.DefaultEmbedBatch, "texts per request")
	fs.StringVar(&o.model, "model", "BAAI/bge-large-en-v1.5", "embedding model")
	fs.BoolVar(&o.live, "live", false, "embed against the real Together API (needs TOGETHER_API_KEY)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress bar")
	fs.DurationVar(&o.latency, "latency", 150*time.Millisecond, "the simulated provider's service time")
	fs.DurationVar(&o.queries, "queries", 2*time.Second, "embed a search query at interactive priority this often while the corpus runs, on the same key and model (0: none)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: embed [flags] [file ...]\n\nEmbeds the non-empty lines of the files (or a built-in sample) and reports the rate achieved.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.files = fs.Args()
	switch {
	case o.n <= 0:
		return o, errors.New("-n must be positive")
	case o.tier <= 0:
		return o, errors.New("-tier must be positive")
	case o.batch <= 0:
		return o, errors.New("-batch must be positive")
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	texts, err := corpus(o)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var baseURL, where string
	var sim *conformance.Server
	if o.live {
		if os.Getenv("TOGETHER_API_KEY") == "" {
			return errors.New("-live needs TOGETHER_API_KEY")
		}
		baseURL, where = together.DefaultBaseURL, "the Together API"
	} else {
		sim = conformance.NewServer(conformance.Config{
			Limits:  map[string]conformance.Limit{conformance.Embeddings: {RPM: o.tier}},
			Latency: o.latency, LatencyJitter: o.latency / 2,
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		baseURL = "http://" + ln.Addr().String() + "/v1"
		where = fmt.Sprintf("the simulated provider at %s (real limit %.0f requests/min)", baseURL, o.tier)
	}

	// Count what goes on the wire, under every decorator.
	var c counters
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(req)
		if transport.PriorityOf(req.Context()) == transport.PriorityInteractive {
			return resp, err // a query: reported apart
		}
		if transport.Endpoint(req) == transport.EndpointEmbeddings {
			c.sent.Add(1)
			if err == nil && resp.StatusCode == http.StatusTooManyRequests {
				c.tooMany.Add(1)
			}
		}
		return resp, err
	})
	opts := []together.Option{
		together.WithBaseURL(baseURL),
		together.WithRate(together.RouteEmbeddings, o.rate),
		together.WithEvents(func(e transport.Event) {
			if e.Kind == transport.EventFellBack {
				c.fallbacks.Add(1)
			}
		}),
	}
	if !o.live {
		opts = append(opts, together.WithAPIKey("simulated-key"))
	}
	client := &http.Client{Transport: together.NewTransport(base, opts...)}

	requests := (len(texts) + o.batch - 1) / o.batch
	fmt.Fprintf(stdout, "embedding %d texts in %d requests of up to %d with %s through %s; client told %.0f requests/min\n",
		len(texts), requests, o.batch, o.model, where, o.rate)

	// The bar's own rate and time left are not shown: it measures from its
	// first update, which the provider's first burst makes within
	// microseconds of the second (20 texts over 4 µs: 5 million texts a
	// second), then averages the last few half-seconds, the burst among
	// them. progressLabel gives the rate over the run so far instead.
	var bar *progressbar.ProgressBar
	if !o.quiet {
		bar = progressbar.NewOptions(len(texts), progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(progressLabel(0, len(texts), 0)), progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false), progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	start := time.Now()
	// A user's search meanwhile: its query is embedded with the same model
	// on the same key, at interactive priority, so it is served at the
	// next token rather than behind the corpus's queue (EmbedAll sends at
	// batch priority).
	done := make(chan struct{})
	queries := make(chan []time.Duration, 1)
	go func() { queries <- search(ctx, client, o, done) }()
	vecs, err := together.EmbedAll(ctx, client, o.model, texts, together.WithBatchSize(o.batch),
		together.WithProgress(func(done, total int) {
			if bar != nil {
				bar.Describe(progressLabel(done, total, time.Since(start)))
				_ = bar.Set(done)
			}
		}))
	elapsed := time.Since(start)
	close(done)
	waits := <-queries
	if bar != nil {
		_ = bar.Finish()
	}
	embedded := 0
	for _, v := range vecs {
		if v != nil {
			embedded++
		}
	}

	fmt.Fprintf(stdout, "\ntexts      %d embedded of %d\n", embedded, len(texts))
	// Retries are the corpus's sends beyond one a request, as its sends
	// and 429s are: the queries' are reported apart.
	fmt.Fprintf(stdout, "requests   %d logical, %d sent, %d answered 429, %d retries, %d fallbacks\n",
		requests, c.sent.Load(), c.tooMany.Load(), max(c.sent.Load()-int64(requests), 0), c.fallbacks.Load())
	if len(waits) > 0 {
		slices.Sort(waits)
		fmt.Fprintf(stdout, "queries    %d embedded while the corpus ran, at interactive priority: median %v, slowest %v\n",
			len(waits), waits[len(waits)/2].Round(time.Millisecond), waits[len(waits)-1].Round(time.Millisecond))
	}
	// The rate achieved is of the requests the provider accepted, not of
	// those the corpus was split into: a run that failed part of the way,
	// or before anything was sent, achieved only what was answered.
	accepted := float64(c.sent.Load() - c.tooMany.Load() + int64(len(waits)))
	fmt.Fprintf(stdout, "time       %v", elapsed.Round(10*time.Millisecond))
	if !o.live {
		// The provider enforces tier/60 requests a second with a burst of
		// as many: the first burst is free, the rest come at the rate.
		// The queries take their share of the key.
		perSec := o.tier / 60
		all := float64(requests + len(waits))
		least := time.Duration(math.Max(0, all-math.Max(perSec, 1)) / perSec * float64(time.Second))
		if least > 0 {
			fmt.Fprintf(stdout, " (least possible %v, %.1f%% over)\n", least.Round(10*time.Millisecond),
				100*(elapsed.Seconds()/least.Seconds()-1))
		} else {
			// Nothing to measure the time against: no share over it.
			fmt.Fprintln(stdout, " (least possible 0s: every request fits in the first burst)")
		}
		achieved := accepted / elapsed.Seconds() * 60
		fmt.Fprintf(stdout, "rate       %.0f requests/min achieved against a limit of %.0f (%.0f%%)\n",
			achieved, o.tier, 100*achieved/o.tier)
	} else {
		fmt.Fprintf(stdout, "\nrate       %.0f requests/min achieved\n", accepted/elapsed.Seconds()*60)
	}
	return err
}

// minRateSpan is how long a run goes before its progress shows a rate. The
// provider's first burst is answered within milliseconds, and a rate over
// those is the burst's, not the run's. The simulated provider's burst is
// a second of its limit, so from 2 s on the rate so far is at most 1.5
// times the limit's, and nearer it the longer the run.
const minRateSpan = 2 * time.Second

// progressLabel is what the progress line says after done of total texts
// in elapsed: once minRateSpan has passed, the rate over the whole run so
// far, and the time left at that rate.
func progressLabel(done, total int, elapsed time.Duration) string {
	if elapsed < minRateSpan || done <= 0 {
		return "embedding"
	}
	rate := float64(done) / elapsed.Seconds()
	left := time.Duration(float64(total-done) / rate * float64(time.Second)).Round(time.Second)
	return fmt.Sprintf("embedding, %.0f texts/s so far, about %v left", rate, left)
}

// search embeds a query every o.queries until done closes, at interactive
// priority, and returns how long each took.
func search(ctx context.Context, client *http.Client, o options, done <-chan struct{}) []time.Duration {
	if o.queries <= 0 {
		return nil
	}
	ctx = transport.WithPriority(ctx, transport.PriorityInteractive)
	tick := time.NewTicker(o.queries)
	defer tick.Stop()
	var waits []time.Duration
	for i := 0; ; i++ {
		select {
		case <-done:
			return waits
		case <-ctx.Done():
			return waits
		case <-tick.C:
		}
		start := time.Now()
		query := fmt.Sprintf("search %d: which documents mention rate limits?", i)
		if _, err := together.EmbedAll(ctx, client, o.model, []string{query}, together.WithoutModelCheck()); err == nil {
			waits = append(waits, time.Since(start))
		}
	}
}

type counters struct {
	sent, tooMany, fallbacks atomic.Int64
}

// corpus returns the non-empty lines of the files, or a generated sample.
func corpus(o options) ([]string, error) {
	if len(o.files) == 0 {
		out := make([]string, o.n)
		for i := range out {
			out[i] = fmt.Sprintf("Sample document %d: rate limits are per key, enforced per second, and learnt from the server's answers.", i)
		}
		return out, nil
	}
	var out []string
	for _, name := range o.files {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" {
				out = append(out, line)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the files hold no text")
	}
	return out, nil
}
