package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// ScenarioBaseURL is the API root a scenario's requests are sent to. The
// in-memory [Server] ignores the host; the name is Together's so that
// stacks that look at it behave as in production.
const ScenarioBaseURL = "https://api.together.xyz/v1"

// DefaultHorizon is a scenario's end when [Workload.Horizon] is zero.
const DefaultHorizon = 2 * time.Hour

// EmbedFunc runs an embedding job: it embeds texts with model through
// client, against the API at baseURL (ending in "/v1"), and returns how
// many texts it embedded.
type EmbedFunc func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error)

// Stack is a client-side stack under test: what a program would put
// between itself and the provider.
type Stack struct {
	// Name labels the stack in tables and plots.
	Name string
	// Wrap builds the stack in front of the provider. It is called once
	// per run, inside the run's bubble, so every run starts with fresh
	// state (full limiters, closed breakers). nil means bare: requests go
	// straight to the provider.
	Wrap transport.Middleware
	// Embed runs a scenario's embedding job, for stacks that come with
	// their own job driver (the guide's batchEmbedDocuments, an EmbedAll).
	// nil means [EmbedSequential] with the workload's batch size.
	Embed EmbedFunc
}

// Workload is what a scenario asks of a stack: a number of requests sent
// by callers in a closed loop (each caller sends its next request when the
// previous one returns), requests started at a fixed pace (an open loop),
// or an embedding job.
type Workload struct {
	// Endpoint is the endpoint of the requests: [Chat] (the default),
	// [Completions], [Embeddings] or [Messages] (Anthropic's). A job always
	// uses [Embeddings].
	Endpoint string
	// MaxTokens is the max_tokens of each chat, completion or message
	// request; 0 means 16.
	MaxTokens int
	// Model is the model every request names.
	Model string
	// Fallback is a model the workload's requests may be served by while
	// every request to Model fails (a fallback chain's next model); the
	// oracle sends there then. "" means none: the oracle waits.
	Fallback string
	// Requests is the number of requests to send.
	Requests int
	// Concurrency is the number of callers of a closed loop; 0 means 1.
	Concurrency int
	// Every, when positive, makes the loop open: request i starts at
	// i×Every, each on its own, whatever became of the earlier ones.
	Every time.Duration
	// Timeout, when positive, is each request's deadline, counted from
	// when it starts.
	Timeout time.Duration
	// Texts, when positive, makes the workload an embedding job of that
	// many texts, run by the stack's [Stack.Embed]; Requests, Concurrency
	// and Every are then unused.
	Texts int
	// BatchSize is the texts per request of a job: the default driver's,
	// and the one the oracle's time is computed with. 0 means 20.
	BatchSize int
	// Horizon is the scenario's end, counted from its start: the callers
	// that have not returned by then are cut off (their context ends) and
	// counted as hung; requests not yet sent are not sent. 0 means
	// [DefaultHorizon].
	Horizon time.Duration
}

func (w Workload) endpoint() string {
	switch {
	case w.Texts > 0:
		return Embeddings
	case w.Endpoint == "":
		return Chat
	}
	return w.Endpoint
}

func (w Workload) batchSize() int {
	if w.BatchSize <= 0 {
		return NaiveBatchSize
	}
	return w.BatchSize
}

func (w Workload) horizon() time.Duration {
	if w.Horizon <= 0 {
		return DefaultHorizon
	}
	return w.Horizon
}

// demand is the number of requests the workload needs answered: for a job,
// its batches at the workload's batch size.
func (w Workload) demand() int {
	if w.Texts > 0 {
		bs := w.batchSize()
		return (w.Texts + bs - 1) / bs
	}
	return w.Requests
}

// Scenario is one situation a stack is measured in: a provider that
// behaves as Server says, and a workload.
type Scenario struct {
	// Name is a short identifier, used in file names ("chat-burst").
	Name string
	// Title is a one-line heading for tables.
	Title string
	// About says what the scenario shows, for the documentation.
	About string
	// Server configures the fresh [Server] of each run.
	Server Config
	// Workload is what the callers ask of the stack.
	Workload Workload
	// Goal is what a good stack achieves here (see [ScenarioGoal.Grade]).
	Goal ScenarioGoal
}

// Outcome is what became of one stack in one scenario. Requests are
// counted as the caller sees them (one per call of the client, whatever
// the stack does underneath), arrivals as the server sees them.
type Outcome struct {
	Scenario, Stack string // the names of the scenario and of the stack
	// Start is the run's start by the clock it ran on (the bubble's):
	// minute windows are aligned on the clock, so [Scenario.Ideal] needs it.
	Start time.Time

	// Requests is the number of requests of the workload (for a job: the
	// calls the job driver made). Every one ended in exactly one of
	// Succeeded (a 2xx reached the caller), Failed (the stack gave up with
	// an error or another status before the caller's context ended), or
	// Hung (the request returned only because its context ended, at its
	// deadline or the scenario's horizon, or was never sent because the
	// horizon came first).
	Requests, Succeeded, Failed, Hung int
	// Texts and Embedded count the texts of a job, and those embedded.
	Texts, Embedded int
	// JobErr is the error the job driver returned.
	JobErr error

	// Arrivals, Accepted, TooMany and ServerErrors count what the server
	// saw at the workload's endpoint: every request, the 2xx answers, the
	// 429s, the 5xx. Requests to other endpoints (a list of models) are
	// not counted.
	Arrivals, Accepted, TooMany, ServerErrors int
	// AcceptedAt holds the time, since the start, of every accepted
	// arrival, in order.
	AcceptedAt []time.Duration

	// Wall is the time from the start until the last caller returned.
	Wall time.Duration
	// Least is the oracle's time: the least the work takes against the
	// server's limits (see [Scenario.Least]).
	Least time.Duration
	// Servable is how many requests the oracle gets answered: under
	// deadlines the server cannot meet, fewer than Requests (see
	// [Scenario.Servable]).
	Servable int
	// Deadlines reports whether the requests had deadlines, and MaxLate
	// how long after its deadline the latest caller got its answer.
	Deadlines bool
	MaxLate   time.Duration
	// Calls holds every call as the caller saw it, in the order they
	// returned.
	Calls []Call
}

// Call is one request as its caller saw it.
type Call struct {
	Start, End time.Duration // since the run's start
	// Deadline is the request's own deadline since the run's start; 0
	// when it had none but the scenario's horizon.
	Deadline time.Duration
	Status   int  // the status returned; 0 for an error
	Hung     bool // it returned only because its context ended
}

// Complete reports whether all the work was done: every request succeeded
// or, for a job, every text was embedded.
func (o Outcome) Complete() bool {
	if o.Texts > 0 {
		return o.Embedded == o.Texts && o.JobErr == nil
	}
	return o.Succeeded == o.Requests
}

// Ratio is Wall divided by Least, the time taken against the oracle's; 0
// when Least is 0. A perfect stack is a little above 1: the oracle does
// not wait for its last answer.
func (o Outcome) Ratio() float64 {
	if o.Least <= 0 {
		return 0
	}
	return float64(o.Wall) / float64(o.Least)
}

// String summarizes o on one line: what the callers got, what the server
// saw, and the time against the oracle's.
func (o Outcome) String() string {
	return fmt.Sprintf("requests %d, succeeded %d, failed %d, hung %d, arrivals %d, 429s %d (%.2f%%), 5xx %d, wall %v, oracle %v (×%.3f), max late %v",
		o.Requests, o.Succeeded, o.Failed, o.Hung, o.Arrivals, o.TooMany, 100*o.TooManyShare(), o.ServerErrors,
		o.Wall.Round(time.Millisecond), o.Least.Round(time.Millisecond), o.Ratio(), o.MaxLate)
}

// TooManyShare is the share of the server's arrivals answered 429; 0 when
// nothing arrived.
func (o Outcome) TooManyShare() float64 {
	if o.Arrivals <= 0 {
		return 0
	}
	return float64(o.TooMany) / float64(o.Arrivals)
}

// Run runs scenario s against stack st and measures it. It starts a fresh
// [Server], puts st in front of it, drives the workload until it is done
// or its horizon passes, and waits for every caller to return.
//
// Run is meant to be called inside a testing/synctest bubble (from the
// function given to synctest.Test), where the scenario's minutes pass in
// virtual time, in milliseconds of real time, and every wait is exact.
// Outside a bubble it works, but in real time.
func Run(s Scenario, st Stack) Outcome {
	start := time.Now()
	w := s.Workload
	srv := NewServer(s.Server)
	watch := &embedWatch{next: srv, done: map[string]bool{}}
	var rt http.RoundTripper = watch
	if st.Wrap != nil {
		rt = st.Wrap(watch)
	}
	tally := &callTally{start: start, horizon: start.Add(w.horizon())}
	client := &http.Client{Transport: tally.wrap(rt)}
	ctx, cancel := context.WithTimeout(context.Background(), w.horizon())
	defer cancel()

	o := Outcome{Scenario: s.Name, Stack: st.Name, Start: start, Deadlines: w.Timeout > 0}
	unsent := 0 // requests the horizon came before
	switch {
	case w.Texts > 0:
		texts := make([]string, w.Texts)
		for i := range texts {
			texts[i] = jobText(i)
		}
		embed := st.Embed
		if embed == nil {
			embed = EmbedSequential(w.batchSize())
		}
		o.Texts = w.Texts
		o.Embedded, o.JobErr = embed(ctx, client, ScenarioBaseURL, w.Model, texts)
		// The driver's count, but no more than the texts the server did
		// embed: a driver that drops a batch and says it is done (or
		// hands back empty vectors for it) embedded nothing of it.
		o.Embedded = min(o.Embedded, watch.count(texts))
	case w.Every > 0:
		unsent = w.Requests - openLoop(ctx, client, w)
	default:
		unsent = w.Requests - closedLoop(ctx, client, w)
	}
	o.Wall = time.Since(start)

	// Every caller has returned: the tally is complete.
	o.Succeeded, o.Failed, o.Hung = tally.succeeded, tally.failed, tally.hung+unsent
	o.Requests = o.Succeeded + o.Failed + o.Hung
	o.MaxLate, o.Calls = tally.maxLate, tally.calls

	// Only the workload's endpoint counts: requests a stack adds elsewhere
	// (a list of models, where no limit applies) would thin out its share
	// of 429s and pass for admissions.
	for _, a := range srv.Arrivals() {
		if a.Endpoint != w.endpoint() {
			continue
		}
		o.Arrivals++
		switch {
		case a.Status >= 200 && a.Status < 300:
			o.AcceptedAt = append(o.AcceptedAt, a.At)
		case a.Status == http.StatusTooManyRequests:
			o.TooMany++
		case a.Status >= 500:
			o.ServerErrors++
		}
	}
	sort.Slice(o.AcceptedAt, func(i, j int) bool { return o.AcceptedAt[i] < o.AcceptedAt[j] })
	o.Accepted = len(o.AcceptedAt)
	o.Least = s.Least(start)
	o.Servable = s.Servable(start)
	return o
}

// embedWatch sits in front of a run's server and records the texts it
// embedded: the inputs of each embeddings request it answered 2xx, read as
// the server reads them.
type embedWatch struct {
	next http.RoundTripper

	mu   sync.Mutex
	done map[string]bool
}

func (e *embedWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || !strings.HasSuffix(strings.TrimSuffix(req.URL.Path, "/"), "/embeddings") {
		return e.next.RoundTrip(req)
	}
	var sent bytes.Buffer
	r := req.Clone(req.Context())
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.TeeReader(req.Body, &sent), req.Body}
	resp, err := e.next.RoundTrip(r)
	if err != nil || resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, err
	}
	var body struct {
		Input json.RawMessage `json:"input"`
	}
	if json.Unmarshal(sent.Bytes(), &body) == nil {
		if texts, _, terr := bodyTexts(body.Input, true); terr == nil {
			e.mu.Lock()
			for _, t := range texts {
				e.done[t] = true
			}
			e.mu.Unlock()
		}
	}
	return resp, err
}

// count is how many of texts were embedded.
func (e *embedWatch) count(texts []string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, t := range texts {
		if e.done[t] {
			n++
		}
	}
	return n
}

// closedLoop sends w.Requests requests from w.Concurrency callers and
// returns how many it sent.
func closedLoop(ctx context.Context, client *http.Client, w Workload) int {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(w.Concurrency, 1) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= w.Requests {
					return
				}
				send(ctx, client, w, i)
			}
		})
	}
	wg.Wait()
	return min(int(next.Load()), w.Requests)
}

// openLoop starts one request every w.Every and returns how many it
// started before the horizon.
func openLoop(ctx context.Context, client *http.Client, w Workload) int {
	var wg sync.WaitGroup
	issued := 0
	for i := range w.Requests {
		if i > 0 && transport.Sleep(ctx, w.Every) != nil {
			break
		}
		issued++
		wg.Go(func() { send(ctx, client, w, i) })
	}
	wg.Wait()
	return issued
}

// send sends request i of w and reads its answer through, as a caller
// would.
func send(ctx context.Context, client *http.Client, w Workload, i int) {
	if w.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, w.Timeout)
		defer cancel()
	}
	resp, err := client.Do(w.request(ctx, i))
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// request is request i of a loop.
func (w Workload) request(ctx context.Context, i int) *http.Request {
	path, body := w.requestBody(i)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ScenarioBaseURL+path, bytes.NewReader(body))
	if err != nil {
		panic(err) // the URL and method are constants
	}
	req.Header.Set("Content-Type", "application/json")
	return req
}

// prompt is the text of request i of a loop, and its max_tokens: what a
// token limit counts.
func (w Workload) prompt(i int) (text string, maxTokens int) {
	switch w.endpoint() {
	case Embeddings:
		return "Request " + strconv.Itoa(i) + ": a text to embed.", 0
	}
	if w.MaxTokens > 0 {
		return "Request " + strconv.Itoa(i) + ": say hello.", w.MaxTokens
	}
	return "Request " + strconv.Itoa(i) + ": say hello.", 16
}

// requestBody is the path under [ScenarioBaseURL] and the body of request
// i of a loop.
func (w Workload) requestBody(i int) (path string, body []byte) {
	text, maxTokens := w.prompt(i)
	switch w.endpoint() {
	case Embeddings:
		return "/embeddings", fmt.Appendf(nil, `{"model":%q,"input":[%q]}`, w.Model, text)
	case Completions:
		return "/completions", fmt.Appendf(nil, `{"model":%q,"prompt":%q,"max_tokens":%d}`, w.Model, text, maxTokens)
	case Messages:
		return "/messages", fmt.Appendf(nil, `{"model":%q,"max_tokens":%d,"messages":[{"role":"user","content":%q}]}`, w.Model, maxTokens, text)
	}
	return "/chat/completions", fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":%q}],"max_tokens":%d}`, w.Model, text, maxTokens)
}

// identity is request i's identity as the server names it (see
// requestIdentity), which decides the fate of each of its passes.
func (w Workload) identity(i int) uint64 {
	path, body := w.requestBody(i)
	return requestIdentity(http.MethodPost, scenarioBasePath+path, fnv1a(body))
}

// scenarioBasePath is the path of [ScenarioBaseURL].
const scenarioBasePath = "/v1"

// jobText is text i of an embedding job.
func jobText(i int) string {
	return "Document " + strconv.Itoa(i) + ": a paragraph of a corpus to be embedded for retrieval."
}

// callTally counts the calls as the caller sees them: the outermost layer
// of a run's client.
type callTally struct {
	start, horizon time.Time

	mu                      sync.Mutex
	succeeded, failed, hung int
	maxLate                 time.Duration
	calls                   []Call
}

func (c *callTally) wrap(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		began := time.Now()
		resp, err := next.RoundTrip(req)
		c.record(req.Context(), began, resp, err)
		return resp, err
	})
}

func (c *callTally) record(ctx context.Context, began time.Time, resp *http.Response, err error) {
	now := time.Now()
	call := Call{Start: began.Sub(c.start), End: now.Sub(c.start)}
	if err == nil && resp != nil {
		call.Status = resp.StatusCode
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		if now.Sub(dl) > c.maxLate {
			c.maxLate = now.Sub(dl)
		}
		if dl.Before(c.horizon) {
			call.Deadline = dl.Sub(c.start)
		}
	}
	switch {
	case call.Status >= 200 && call.Status < 300:
		c.succeeded++
	case ctx.Err() != nil: // it gave no answer of its own before the context ended
		call.Hung = true
		c.hung++
	default:
		c.failed++
	}
	c.calls = append(c.calls, call)
}
