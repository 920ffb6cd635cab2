package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

const srvOtherModel = "mistralai/Mixtral-8x7B-Instruct-v0.1"

func srvOtherChat(t testing.TB, rt http.RoundTripper) srvReply {
	t.Helper()
	return srvDo(t, rt, http.MethodPost, "/v1/chat/completions", "k", `{"model":"`+srvOtherModel+`","messages":[]}`)
}

func TestFaultStatusWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Model: srvChatModel, From: time.Minute, Until: 2 * time.Minute},
		}})
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "before the window")
		time.Sleep(time.Minute)
		r := srvChat(t, srv, "k")
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "Status 0 means 503")
		assert.Equal(t, "server_error", srvErrorType(t, r.body))
		assert.Equal(t, http.StatusOK, srvOtherChat(t, srv).status, "another model is served")
		time.Sleep(time.Minute - time.Nanosecond)
		assert.Equal(t, http.StatusServiceUnavailable, srvChat(t, srv, "k").status, "still inside")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "Until is exclusive")
		assert.Equal(t, conformance.Stats{Arrivals: 5, OK: 3, ServerErrors: 2}, srv.Stats())
	})
}

func TestFaultEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 502, Endpoint: conformance.Embeddings},
		}})
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
		r := srvDo(t, srv, http.MethodPost, "/v1/embeddings", "k", `{"model":"`+srvEmbedModel+`","input":"x"}`)
		assert.Equal(t, http.StatusBadGateway, r.status)
	})
}

// A share of requests fails, the same ones under the same seed.
func TestFaultShareSeeded(t *testing.T) {
	run := func(seed int64) []int {
		var statuses []int
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(conformance.Config{
				Seed:          seed,
				LatencyJitter: 10 * time.Millisecond,
				Faults: []conformance.Fault{
					{Kind: conformance.FaultStatus, Status: 500, Share: 0.2},
					{Kind: conformance.FaultStatus, Status: 502, Share: 0.1},
				},
			})
			for range 1000 {
				statuses = append(statuses, srvChat(t, srv, "k").status)
			}
		})
		return statuses
	}
	a, b, c := run(1), run(1), run(2)
	assert.Equal(t, a, b, "the same seed, the same faults")
	assert.NotEqual(t, a, c, "another seed, other faults")
	count := map[int]int{}
	for _, s := range a {
		count[s]++
	}
	assert.InDelta(t, 200, count[500], 40, "a share of 0.2")
	assert.InDelta(t, 80, count[502], 30, "0.1 of the 0.8 left")
	assert.Equal(t, 1000, count[200]+count[500]+count[502])
}

func TestFaultReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultReset, Until: time.Second}}})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.Nil(t, resp)
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.ErrorIs(t, err, conformance.ErrReset)
		time.Sleep(time.Second)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
		arr := srv.Arrivals()
		require.Len(t, arr, 2)
		assert.Zero(t, arr[0].Status, "a reset has no status")
		assert.Equal(t, conformance.Stats{Arrivals: 2, OK: 1, Other: 1}, srv.Stats())
	})
}

func TestFaultHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultHang}}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		resp, err := srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Hour, time.Since(start), "no answer until the deadline")

		ctx, cancel = context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Minute)
			cancel()
		}()
		_, err = srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, conformance.Stats{Arrivals: 2, Other: 2}, srv.Stats())
	})
}

func TestFaultTruncate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultTruncate}}})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, resp.ContentLength/2, int64(len(b)), "half the announced body")
		assert.False(t, json.Valid(b))

		// A truncated stream stops short of [DONE].
		resp, err = srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k",
			`{"model":"`+srvChatModel+`","stream":true,"messages":[]}`)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Contains(t, string(b), "data: {")
		assert.NotContains(t, string(b), "[DONE]")
	})
}

func TestFaultLatencyJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Latency: 100 * time.Millisecond, LatencyJitter: 50 * time.Millisecond, Seed: 7})
		seen := map[time.Duration]bool{}
		for range 50 {
			start := time.Now()
			srvChat(t, srv, "k")
			d := time.Since(start)
			assert.GreaterOrEqual(t, d, 100*time.Millisecond)
			assert.Less(t, d, 150*time.Millisecond)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 40, "jittered")

		// A 429 does not wait: the gateway answers it.
		lim := conformance.NewServer(conformance.Config{
			Latency: time.Second,
			Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 30}},
		})
		srvChat(t, lim, "k") // a second of latency, of the two the next request must wait
		start := time.Now()
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, lim, "k").status)
		assert.Zero(t, time.Since(start))
	})
}

// A fault never hides a 429: the limit is checked first.
func TestFaultAfterLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := srvChatLimit(conformance.Limit{RPM: 60})
		cfg.Faults = []conformance.Fault{{Kind: conformance.FaultStatus, Status: 500}}
		srv := conformance.NewServer(cfg)
		assert.Equal(t, 500, srvChat(t, srv, "k").status)
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, srv, "k").status, "the 500 spent the second's request")
		assert.ErrorIs(t, error(conformance.ErrReset), syscall.ECONNRESET)
	})
}

// srvNumbered is chat request i: a body of its own, as a workload's
// requests have.
func srvNumbered(i int) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Request %d: say hello."}]}`, srvChatModel, i)
}

// srvFate is what became of one request: its status (0 for a reset) and
// how long its answer took.
type srvFate struct {
	status int
	took   time.Duration
}

func srvTry(t testing.TB, rt http.RoundTripper, body string) srvFate {
	t.Helper()
	return srvTryAs(t, rt, "k", body)
}

// srvTryAs is srvTry with the API key key.
func srvTryAs(t testing.TB, rt http.RoundTripper, key, body string) srvFate {
	t.Helper()
	start := time.Now()
	resp, err := srvSend(context.Background(), rt, http.MethodPost, "/v1/chat/completions", key, body)
	if err != nil {
		require.ErrorIs(t, err, syscall.ECONNRESET)
		return srvFate{took: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return srvFate{resp.StatusCode, time.Since(start)}
}

// A request's fault and latency are its own: they do not change with the
// order requests arrive in, whether that order is shuffled or left to the
// scheduler of a bubble.
func TestFaultDrawsIgnoreArrivalOrder(t *testing.T) {
	const n = 200
	cfg := conformance.Config{
		Seed:          3,
		Latency:       10 * time.Millisecond,
		LatencyJitter: 10 * time.Millisecond,
		Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 500, Share: 0.3},
			{Kind: conformance.FaultReset, Share: 0.2},
		},
	}
	// Each request is sent twice: the fates of its first and second pass.
	inOrder := func(order []int) map[int][]srvFate {
		fates := map[int][]srvFate{}
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(cfg)
			for _, i := range order {
				fates[i] = append(fates[i], srvTry(t, srv, srvNumbered(i)))
			}
		})
		return fates
	}
	order := make([]int, 0, 2*n)
	for i := range 2 * n {
		order = append(order, i%n)
	}
	straight := inOrder(order)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	shuffled := inOrder(order)
	assert.Equal(t, straight, shuffled, "a shuffled order, the same fates")

	concurrent := map[int][]srvFate{}
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(cfg)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				a, b := srvTry(t, srv, srvNumbered(i)), srvTry(t, srv, srvNumbered(i))
				mu.Lock()
				defer mu.Unlock()
				concurrent[i] = []srvFate{a, b}
			})
		}
		wg.Wait()
	})
	assert.Equal(t, straight, concurrent, "simultaneous arrivals in the scheduler's order, the same fates")

	count := map[int]int{}
	for _, fs := range straight {
		for _, f := range fs {
			count[f.status]++
		}
	}
	assert.InDelta(t, 0.3*2*n, count[500], 40, "a share of 0.3")
	assert.InDelta(t, 0.2*0.7*2*n, count[0], 30, "resets: 0.2 of the 0.7 left")
}

// Stacks that send different keys, or none, meet the same fates on the
// same requests: a comparison of stacks compares the stacks.
func TestFaultDrawsIgnoreKey(t *testing.T) {
	cfg := conformance.Config{Seed: 6, LatencyJitter: 100 * time.Millisecond, Faults: []conformance.Fault{
		{Kind: conformance.FaultStatus, Status: 500, Share: 0.5},
	}}
	fates := map[string][]srvFate{}
	for _, key := range []string{"a", "b", ""} {
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(cfg)
			for i := range 40 {
				fates[key] = append(fates[key], srvTryAs(t, srv, key, srvNumbered(i)))
			}
		})
	}
	assert.Equal(t, fates["a"], fates["b"])
	assert.Equal(t, fates["a"], fates[""])
}

// A 429 does not use up a request's draws: its first pass through the
// limits meets the fate it would have met had it not been refused first.
func TestFaultDrawsSkip429s(t *testing.T) {
	const n = 40
	cfg := srvChatLimit(conformance.Limit{RPM: 60})
	cfg.Seed = 4
	cfg.LatencyJitter = 100 * time.Millisecond
	cfg.Faults = []conformance.Fault{{Kind: conformance.FaultStatus, Status: 500, Share: 0.5}}
	var direct, refusedFirst []srvFate
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(cfg)
		for i := range n {
			direct = append(direct, srvTry(t, srv, srvNumbered(i)))
			time.Sleep(2 * time.Second)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(cfg)
		for i := range n {
			srvTry(t, srv, srvNumbered(1000+i)) // takes the second's request
			require.Equal(t, http.StatusTooManyRequests, srvTry(t, srv, srvNumbered(i)).status)
			time.Sleep(time.Second)
			refusedFirst = append(refusedFirst, srvTry(t, srv, srvNumbered(i)))
			time.Sleep(time.Second)
		}
	})
	assert.Equal(t, direct, refusedFirst)
	hit := 0
	for _, f := range direct {
		if f.status == 500 {
			hit++
		}
	}
	assert.InDelta(t, n/2, hit, 12, "a share of 0.5")
}

// Shares hold over many requests, each pass draws anew, and a fault's draw
// is independent of the faults before it.
func TestFaultSharePerPass(t *testing.T) {
	const n = 4000
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Seed: 5, Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 500, Share: 0.3},
			{Kind: conformance.FaultStatus, Status: 502, Share: 0.5},
		}})
		first := map[int]int{}
		both500 := 0
		for i := range n {
			a, b := srvTry(t, srv, srvNumbered(i)), srvTry(t, srv, srvNumbered(i))
			first[a.status]++
			if a.status == 500 && b.status == 500 {
				both500++
			}
		}
		// Five standard deviations of a binomial count either way.
		assert.InDelta(t, 0.3*n, first[500], 150, "a share of 0.3")
		assert.InDelta(t, 0.5*0.7*n, first[502], 150, "0.5 of the 0.7 left")
		assert.InDelta(t, 0.3*0.3*n, both500, 90, "hit twice: 0.3², the passes independent")
	})
}
