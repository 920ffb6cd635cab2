package reallimit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ChatBody is the request every run sends: a small chat completion, whose
// model the presets read to pick a limiter.
const ChatBody = `{"model":"loopback/chat","messages":[{"role":"user","content":"hi"}],"max_tokens":1}`

// Defaults of a zero [Run].
const (
	DefaultCallers = 8               // callers sending at once
	DefaultMaxTime = 2 * time.Minute // a run's cap, and every request's deadline
)

// Run is one client stack sending Requests chat completions to one server
// with one API key, from Callers goroutines in a closed loop (each sends
// its next request when the last returns), until every request is done or
// MaxTime has passed since the start.
type Run struct {
	URL      string        // the chat completions endpoint
	Key      string        // the run's API key: the server's limit is per key
	Requests int           // chat completions to send
	Callers  int           // goroutines sending them; 0 means DefaultCallers
	MaxTime  time.Duration // every request's deadline, from the start; 0 means DefaultMaxTime

	// Stack wraps the counting transport next to the wire with the client
	// under test; nil sends bare requests.
	Stack func(base http.RoundTripper) http.RoundTripper

	// Base is the transport next to the wire; nil means a fresh
	// http.Transport for the run, whose idle connections are closed at
	// its end.
	Base http.RoundTripper
}

// Result is what a run did: what the callers got, what the server saw,
// and how long it took.
type Result struct {
	Requests   int // chat completions the callers asked for
	Succeeded  int // answered 200
	Failed     int // given up before the deadline: an error, or another status
	Unfinished int // cut by the deadline (or refused a wait that would outlast it), or never sent

	Arrivals int // attempts the server answered
	Refused  int // of those, 429s
	Errors   int // attempts that got no answer while their deadline had room: connection errors

	Time time.Duration // from the start until the last request was done
	RTT  time.Duration // the median time the server took to answer an attempt

	// Problems holds the first few failures, for a test's message. No
	// request header is in them.
	Problems []string
}

// RefusedShare is the share of arrivals the server refused with 429.
func (r Result) RefusedShare() float64 {
	if r.Arrivals == 0 {
		return 0
	}
	return float64(r.Refused) / float64(r.Arrivals)
}

// Lost is the requests that did not succeed.
func (r Result) Lost() int { return r.Requests - r.Succeeded }

// Oracle is the oracle's time for the run's requests against l: the
// admission time [Oracle] computes, plus one median round trip for the
// last answer to come back, which no client can save.
func (r Result) Oracle(l Limiter) time.Duration { return Oracle(l, r.Requests) + r.RTT }

// Do runs r and reports what happened. It returns when every caller has
// returned, at most a few moments after MaxTime.
func (r Run) Do(ctx context.Context) Result {
	callers, maxTime := r.Callers, r.MaxTime
	if callers <= 0 {
		callers = DefaultCallers
	}
	if maxTime <= 0 {
		maxTime = DefaultMaxTime
	}
	base := r.Base
	if base == nil {
		t := &http.Transport{
			MaxIdleConnsPerHost: 2 * callers, // the default 2 would open a connection per request
			DisableCompression:  true,
		}
		defer t.CloseIdleConnections()
		base = t
	}
	counted := &counter{next: base}
	var rt http.RoundTripper = counted
	if r.Stack != nil {
		rt = r.Stack(counted)
	}
	client := &http.Client{Transport: rt}

	start := time.Now()
	ctx, cancel := context.WithDeadline(ctx, start.Add(maxTime))
	defer cancel()

	var (
		next atomic.Int64
		mu   sync.Mutex
		res  = Result{Requests: r.Requests}
		last time.Time
		wg   sync.WaitGroup
	)
	for range callers {
		wg.Go(func() {
			for int(next.Add(1)) <= r.Requests {
				out, problem := r.one(ctx, client)
				mu.Lock()
				switch out {
				case succeeded:
					res.Succeeded++
				case failed:
					res.Failed++
				default:
					res.Unfinished++
				}
				if problem != "" && len(res.Problems) < 5 {
					res.Problems = append(res.Problems, problem)
				}
				if now := time.Now(); now.After(last) {
					last = now
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.Time = last.Sub(start)
	res.Arrivals, res.Refused, res.Errors, res.RTT = counted.totals()
	return res
}

type outcome int8

const (
	succeeded outcome = iota
	failed
	unfinished
)

// one sends one chat completion and reads its answer.
func (r Run) one(ctx context.Context, client *http.Client) (outcome, string) {
	if ctx.Err() != nil {
		return unfinished, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader([]byte(ChatBody)))
	if err != nil {
		return failed, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+r.Key)
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			return unfinished, "cut by the deadline: " + err.Error()
		}
		return failed, err.Error()
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return failed, "reading the answer: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		return failed, "answered " + resp.Status
	}
	return succeeded, ""
}

// counter is the transport next to the wire: it counts what the server
// saw and times each of its answers.
type counter struct {
	next http.RoundTripper

	mu       sync.Mutex
	arrivals int
	refused  int
	errors   int
	rtts     []time.Duration
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	t := time.Now()
	resp, err := c.next.RoundTrip(req)
	rtt := time.Since(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if req.Context().Err() == nil { // not the run's deadline cutting it
			c.errors++
		}
		return nil, err
	}
	c.arrivals++
	if resp.StatusCode == http.StatusTooManyRequests {
		c.refused++
	}
	c.rtts = append(c.rtts, rtt)
	return resp, nil
}

func (c *counter) totals() (arrivals, refused, errs int, rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.rtts) > 0 {
		s := slices.Clone(c.rtts)
		slices.Sort(s)
		rtt = s[len(s)/2]
	}
	return c.arrivals, c.refused, c.errors, rtt
}

// Plan is the oracle as a client, as near as a real one can be: it
// knows l and sends the i-th request of the run (in the order they reach
// it) at l.Admit(i) × (1 + stretch) after the first was admitted. The
// stretch is the headroom timing noise needs: nginx admits a request only
// if its clock shows a full 1/rate since the last admission, to the
// millisecond, so a client that sends at exactly the rate has about half
// its requests refused by loopback jitter alone.
//
// The plan follows the server's state as the oracle knows it, taking the
// moment an answer came back as the latest its request can have been
// admitted. The schedule starts when the first request is answered (a
// fixed window opens when the server handles that request, which a busy
// server does a while after it was sent). When a request that opens a
// step of the schedule (every one past nginx's burst; the first of each
// fixed window) is answered later than its slot, because this machine
// stalled or the server was slow, the server's state moved with it, and
// the whole schedule moves by as much: a schedule that stayed put would
// have the next request refused, as nginx measures from the last
// admission, and every one after it until it caught up. A 429 all the
// same is sent again every millisecond until it is admitted, and then
// moves the schedule in the same way.
//
// A Plan run shows how near the oracle's time a client on this machine can
// come, and whether the server keeps the oracle's rules: a Plan run with
// many 429s says the oracle is wrong.
func Plan(l Limiter, stretch float64) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return &plan{limit: l, stretch: 1 + stretch, next: next, started: make(chan struct{})}
	}
}

type plan struct {
	limit   Limiter
	stretch float64
	next    http.RoundTripper

	started chan struct{} // closed when the first request is answered
	mu      sync.Mutex
	start   time.Time // the first answer; moves later with late steps
	sent    int
}

// take numbers a request.
func (p *plan) take() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent++
	return p.sent - 1
}

// slot is when request i is to be sent; a request that the server admits
// at once, with the first, goes at once.
func (p *plan) slot(ctx context.Context, i int) (time.Time, error) {
	admit := p.limit.Admit(i)
	if admit == 0 {
		return time.Time{}, nil
	}
	select {
	case <-p.started:
	case <-ctx.Done():
		return time.Time{}, fmt.Errorf("waiting for the first answer: %w", ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.start.Add(time.Duration(float64(admit) * p.stretch)), nil
}

// answered records that request i was admitted by the time its answer
// came back at t: the first starts the schedule, a late step moves it.
func (p *plan) answered(i int, t time.Time, refused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i == 0 {
		p.start = t
		close(p.started)
		return
	}
	if !refused && p.limit.Admit(i) == p.limit.Admit(i-1) {
		return // inside a step: the server's state did not wait for it
	}
	select {
	case <-p.started:
	default:
		return // the first answer, still to come, starts the schedule later still
	}
	slot := p.start.Add(time.Duration(float64(p.limit.Admit(i)) * p.stretch))
	if d := t.Sub(slot); d > 0 {
		p.start = p.start.Add(d)
	}
}

func (p *plan) RoundTrip(req *http.Request) (*http.Response, error) {
	i := p.take()
	if req.Body != nil {
		req.Body.Close() // resent from GetBody on every attempt
	}
	ctx := req.Context()
	refused := false
	for {
		// The slot is read again after every sleep: a late step may
		// have moved it.
		at, err := p.slot(ctx, i)
		if err != nil {
			return nil, err
		}
		if time.Now().Before(at) {
			if err := sleepUntil(ctx, at); err != nil {
				return nil, err
			}
			continue
		}
		attempt := req.Clone(ctx)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			attempt.Body = body
		}
		resp, err := p.next.RoundTrip(attempt)
		if err != nil {
			if i == 0 {
				p.answered(0, time.Now(), false) // so that no one waits for it forever
			}
			return nil, err
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			p.answered(i, time.Now(), refused)
			return resp, nil
		}
		refused = true
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := sleepUntil(ctx, time.Now().Add(time.Millisecond)); err != nil {
			return nil, err
		}
	}
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the planned moment: %w", ctx.Err())
	}
}
