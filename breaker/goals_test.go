package breaker_test

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// The goals of the breaker and Fallback, on the simulated provider: a model
// answers 503 for three minutes while 1,200 requests arrive from 8
// goroutines (one every 250 ms, five minutes in all).
const (
	primary   = "meta-llama/Llama-3.3-70B-Instruct-Turbo"
	alternate = "mistralai/Mixtral-8x7B-Instruct-v0.1"

	outage       = 3 * time.Minute
	goroutines   = 8
	perGoroutine = 150
	gap          = 2 * time.Second // between two requests of one goroutine
	latency      = 200 * time.Millisecond
	jitter       = 100 * time.Millisecond
)

func outageServer(outage time.Duration) *conformance.Server {
	return conformance.NewServer(conformance.Config{
		Seed:          1,
		Latency:       latency,
		LatencyJitter: jitter,
		Faults: []conformance.Fault{{
			Kind: conformance.FaultStatus, Status: http.StatusServiceUnavailable,
			Model: primary, From: 0, Until: outage,
		}},
	})
}

// retryLoop stands in for the retry decorator: up to three attempts, 500 ms
// apart, on a 5xx answer; an error (an open breaker's included) is returned
// at once.
func retryLoop(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var r transport.Replay
		if err := r.Reset(req, 0); err != nil {
			return nil, err
		}
		for attempt := 1; ; attempt++ {
			areq, err := r.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(areq)
			if err != nil || resp.StatusCode < 500 || attempt == 3 || !r.CanReplay() {
				return resp, err
			}
			transport.Drain(resp)
			if err := transport.Sleep(req.Context(), 500*time.Millisecond); err != nil {
				return nil, err
			}
		}
	})
}

// outcome is one caller's request as the caller saw it.
type outcome struct {
	start, took time.Duration
	status      int
	model       string // the Steady-Model header
	err         error
}

// stateChange is one breaker transition, timed from the start.
type stateChange struct {
	at       time.Duration
	from, to string
}

// runLoad sends the goals' 1,200 requests through rt and returns what each
// caller saw, in the order they started.
func runLoad(t *testing.T, rt http.RoundTripper, epoch time.Time) []outcome {
	t.Helper()
	var mu sync.Mutex
	var out []outcome
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			time.Sleep(time.Duration(g) * gap / goroutines)
			for range perGoroutine {
				req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
					strings.NewReader(`{"model":"`+primary+`","messages":[{"role":"user","content":"Say hi"}],"max_tokens":16}`))
				if !assert.NoError(t, err) {
					return
				}
				req.Header.Set("Authorization", "Bearer key-1")
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				o := outcome{start: start.Sub(epoch), took: time.Since(start), err: err}
				if resp != nil {
					o.status, o.model = resp.StatusCode, resp.Header.Get(transport.ModelHeader)
					transport.Drain(resp)
				}
				mu.Lock()
				out = append(out, o)
				mu.Unlock()
				time.Sleep(gap - time.Since(start)%gap)
			}
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b outcome) int { return int(a.start - b.start) })
	return out
}

// The outage of the goal ends at 3m, half a minute after a probe round; the
// one ending at 3m4s ends just after a probe found the model still down, the
// worst case for the return of traffic.
func TestGoalFallbackServesEveryRequest(t *testing.T) {
	for _, outage := range []time.Duration{outage, outage + 4*time.Second} {
		t.Run(outage.String(), func(t *testing.T) { fallbackGoal(t, outage) })
	}
}

func fallbackGoal(t *testing.T, outage time.Duration) {
	synctest.Test(t, func(t *testing.T) {
		srv := outageServer(outage)
		epoch := time.Now()
		var mu sync.Mutex
		var changes []stateChange
		br := breaker.New(breaker.WithEvents(func(e transport.Event) {
			if e.Model == primary {
				mu.Lock()
				changes = append(changes, stateChange{time.Since(epoch), e.From, e.To})
				mu.Unlock()
			}
		}))
		rt := transport.Chain(srv,
			transport.Fallback(map[string][]string{primary: {alternate}}),
			retryLoop,
			br,
		)
		out := runLoad(t, rt, epoch)
		require.Len(t, out, goroutines*perGoroutine)

		failed := 0
		for _, o := range out {
			if o.err != nil || o.status != http.StatusOK {
				failed++
			}
		}
		assert.Zero(t, failed, "every request succeeds")

		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, changes)
		require.Equal(t, breaker.StateOpen.String(), changes[0].to)
		opened := changes[0].at

		// While the model is down, only the requests that opened the
		// breaker and the probes reach it.
		var reached, reachedAfterOpen int
		for _, a := range srv.Arrivals() {
			if a.Model == primary && a.At < outage {
				reached++
				if a.At >= opened {
					reachedAfterOpen++
				}
			}
		}
		var sent, probes int
		for _, o := range out {
			if o.start < outage {
				sent++
			}
		}
		for _, c := range changes {
			if c.to == breaker.StateHalfOpen.String() && c.at < outage {
				probes++
			}
		}
		share := float64(reached) / float64(sent)
		t.Logf("breaker opened at %v; %d of the %d requests sent during the outage reached %s (%.1f%%), %d after it opened, in %d half-open rounds",
			opened, reached, sent, primary, 100*share, reachedAfterOpen, probes)
		assert.LessOrEqual(t, share, 0.05)
		assert.LessOrEqual(t, reachedAfterOpen, probes*breaker.DefaultHalfOpenProbes, "after it opened: probes only")

		// After the recovery, traffic returns within the breaker's timeout
		// plus one round of probes.
		var closed time.Duration
		for _, c := range changes {
			if c.to == breaker.StateClosed.String() {
				closed = c.at
			}
		}
		require.Greater(t, closed, outage, "the breaker closed after the recovery")
		back := closed
		for i := len(out) - 1; i >= 0 && out[i].model == primary; i-- {
			back = out[i].start
		}
		probeRound := time.Duration(breaker.DefaultHalfOpenProbes)*gap/goroutines + latency + jitter
		t.Logf("model recovered at %v; breaker closed at %v (+%v); every request from %v on served by %s (+%v); bound +%v",
			outage, closed, closed-outage, back, primary, back-outage, breaker.DefaultTimeout+probeRound)
		assert.LessOrEqual(t, closed-outage, breaker.DefaultTimeout+probeRound)
		assert.LessOrEqual(t, back-outage, breaker.DefaultTimeout+probeRound)
		var lastAlt time.Duration
		for _, o := range out {
			if o.model == alternate {
				lastAlt = o.start
			}
		}
		assert.Less(t, lastAlt, back, "no request is sent to the alternate once traffic is back")
	})
}

func TestGoalWithoutFallbackFailFast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The same load without a breaker, for comparison: every request in
		// the outage waits through its retries.
		srv := outageServer(outage)
		base := runLoad(t, transport.Chain(srv, retryLoop), time.Now())
		var baseFail []time.Duration
		for _, o := range base {
			if o.status != http.StatusOK {
				baseFail = append(baseFail, o.took)
			}
		}
		slices.Sort(baseFail)
		baseReached := 0
		for _, a := range srv.Arrivals() {
			if a.At < outage {
				baseReached++
			}
		}

		srv = outageServer(outage)
		rt := transport.Chain(srv, retryLoop, breaker.New())
		out := runLoad(t, rt, time.Now())
		require.Len(t, out, goroutines*perGoroutine)
		var fast, slow []time.Duration // time to fail: refused while open / after reaching the model
		probeRound := time.Duration(breaker.DefaultHalfOpenProbes)*gap/goroutines + latency + jitter
		ok := 0
		for _, o := range out {
			switch {
			case o.err == nil && o.status == http.StatusOK:
				ok++
			case o.start >= outage+breaker.DefaultTimeout+probeRound:
				t.Errorf("request at %v, a timeout and a probe after the recovery, failed: %v %d", o.start, o.err, o.status)
			case errors.Is(o.err, breaker.ErrOpen) && o.took == 0:
				fast = append(fast, o.took)
			default:
				slow = append(slow, o.took)
			}
		}
		require.NotEmpty(t, fast)
		require.NotEmpty(t, slow)
		require.NotEmpty(t, baseFail)
		slices.Sort(fast)
		slices.Sort(slow)
		reached := 0
		for _, a := range srv.Arrivals() {
			if a.At < outage {
				reached++
			}
		}
		t.Logf("without fallback, with the breaker: %d requests failed fast while it was open (time to fail: median %v, max %v); "+
			"%d failed after reaching the model (median %v, max %v); %d succeeded; %d arrivals at the model during the outage",
			len(fast), fast[len(fast)/2], fast[len(fast)-1], len(slow), slow[len(slow)/2], slow[len(slow)-1], ok, reached)
		t.Logf("without fallback or breaker: %d requests failed (time to fail: median %v, max %v); %d arrivals at the model during the outage",
			len(baseFail), baseFail[len(baseFail)/2], baseFail[len(baseFail)-1], baseReached)
		assert.Zero(t, fast[len(fast)-1], "an open breaker fails at once")
		assert.Greater(t, baseFail[0], time.Second, "without it, each request waits through its retries")
		assert.Greater(t, len(fast), 10*len(slow))
		assert.Less(t, reached*10, baseReached, "the model is spared most of the load")
	})
}
