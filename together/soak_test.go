package together_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// soakModels spreads the load over three chat models, each with its own
// limiter and breaker.
var soakModels = []string{
	"meta-llama/Llama-3.3-70B-Instruct-Turbo",
	"meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
	"mistralai/Mixtral-8x7B-Instruct-v0.1",
}

// soakTally counts the outcome of every logical request, each once.
type soakTally struct {
	mu    sync.Mutex
	kinds map[string]int
}

func (s *soakTally) add(kind string) {
	s.mu.Lock()
	s.kinds[kind]++
	s.mu.Unlock()
}

// soakOutcome names how one logical request ended.
func soakOutcome(resp *http.Response, err error) string {
	if err != nil {
		switch {
		case errors.Is(err, transport.ErrDeadline):
			return "error: wait refused, past the deadline"
		case errors.Is(err, context.DeadlineExceeded):
			return "error: deadline"
		case errors.Is(err, transport.ErrModelUnavailable):
			return "error: breaker open"
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return "error: reset"
		}
		return "error: other: " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "body: deadline"
		}
		return "body: cut short"
	}
	return "ok"
}

// TestSoak runs 200 callers through the whole preset against the simulator
// over loopback, with faults on, for STEADY_SOAK (a duration, e.g. "60s").
// Afterwards the heap and the goroutine count are back to where they were,
// and every logical request is accounted for: it ended exactly once, and
// the server saw it no more often than the retry policy allows.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak test; not under -short")
	}
	env := os.Getenv("STEADY_SOAK")
	if env == "" {
		t.Skip("set STEADY_SOAK to a duration (e.g. 60s) to run the soak test")
	}
	dur, err := time.ParseDuration(env)
	require.NoError(t, err, "STEADY_SOAK")
	const callers = 200

	var before runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	sim := conformance.NewServer(conformance.Config{
		Seed:          7,
		Limits:        map[string]conformance.Limit{conformance.Chat: {RPM: 12_000}},
		Latency:       2 * time.Millisecond,
		LatencyJitter: 20 * time.Millisecond,
		Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 500, Share: 0.02},
			{Kind: conformance.FaultStatus, Status: 502, Share: 0.02},
			{Kind: conformance.FaultStatus, Status: 503, Share: 0.03},
			{Kind: conformance.FaultReset, Share: 0.02},
			{Kind: conformance.FaultTruncate, Share: 0.01},
			{Kind: conformance.FaultHang, Share: 0.002},
		},
	})
	srv := httptest.NewServer(sim)
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = callers
	// The limiter starts above the server's limit, so 429s press on it.
	client := &http.Client{Transport: together.NewTransport(base,
		together.WithAPIKey("tgp_v1_soak"), together.WithRate(together.RouteChat, 15_000))}

	tally := &soakTally{kinds: map[string]int{}}
	var logical atomic.Int64
	// sent[g] holds caller g's requests: the body's hash and whether it
	// succeeded.
	type sentReq struct {
		hash uint64
		ok   bool
	}
	sent := make([][]sentReq, callers)
	stop := time.Now().Add(dur)
	var wg sync.WaitGroup
	for g := range callers {
		wg.Go(func() {
			for seq := 0; time.Now().Before(stop); seq++ {
				logical.Add(1)
				body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"soak %d %d"}],"max_tokens":8}`,
					soakModels[(g+seq)%len(soakModels)], g, seq)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
				if err != nil {
					cancel()
					tally.add("error: request")
					continue
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				outcome := soakOutcome(resp, err)
				tally.add(outcome)
				sent[g] = append(sent[g], sentReq{bodyHash(body), outcome == "ok"})
				cancel()
			}
		})
	}
	wg.Wait()

	// Tally the server's view before letting it go: arrivals per body.
	perBody := map[uint64]int{}
	arrivals := sim.Arrivals()
	for _, a := range arrivals {
		perBody[a.BodyHash]++
	}
	stats := sim.Stats()
	most, lost := 0, 0
	asked := map[uint64]bool{}
	for _, reqs := range sent {
		for _, r := range reqs {
			asked[r.hash] = true
			most = max(most, perBody[r.hash])
			if r.ok && perBody[r.hash] == 0 {
				lost++
			}
		}
	}
	phantom := 0
	for h := range perBody {
		if !asked[h] {
			phantom++
		}
	}
	distinct := len(perBody)
	sent, perBody, asked = nil, nil, nil
	base.CloseIdleConnections()
	srv.Close()
	sim, srv, client, base, arrivals = nil, nil, nil, nil, nil
	_, _, _, _, _ = sim, srv, client, base, arrivals

	// Goroutines of closed connections take a moment to unwind.
	goroutinesAfter := runtime.NumGoroutine()
	for i := 0; i < 50 && goroutinesAfter > goroutinesBefore+2; i++ {
		time.Sleep(100 * time.Millisecond)
		goroutinesAfter = runtime.NumGoroutine()
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.GC() // a second cycle empties the sync.Pools' victim caches
	runtime.ReadMemStats(&after)

	total := 0
	var kinds []string
	for k, n := range tally.kinds {
		total += n
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	t.Logf("soak %v, %d callers: %d logical requests, %d succeeded; outcomes %s",
		dur, callers, logical.Load(), tally.kinds["ok"], strings.Join(kinds, " "))
	t.Logf("server: %d arrivals (ok %d, 429 %d, 5xx %d, other %d); %d distinct requests arrived, at most %d times each",
		stats.Arrivals, stats.OK, stats.TooMany, stats.ServerErrors, stats.Other, distinct, most)
	t.Logf("heap %d -> %d bytes; goroutines %d -> %d",
		before.HeapAlloc, after.HeapAlloc, goroutinesBefore, goroutinesAfter)

	assert.EqualValues(t, logical.Load(), total, "every logical request ended exactly once")
	assert.LessOrEqual(t, most, faultAttempts, "no request sent more often than the retry policy allows")
	assert.Zero(t, phantom, "nothing arrived that was not asked for")
	assert.Zero(t, lost, "every success was served by the server")
	assert.Positive(t, tally.kinds["ok"])
	for k := range tally.kinds {
		assert.False(t, strings.HasPrefix(k, "error: other"), "an unexplained failure: %s", k)
	}
	assert.LessOrEqual(t, goroutinesAfter, goroutinesBefore+2, "goroutines back to baseline")
	assert.Less(t, int64(after.HeapAlloc)-int64(before.HeapAlloc), int64(8<<20), "heap back to baseline")
}
