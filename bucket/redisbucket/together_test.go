package redisbucket_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/bucket/redisbucket/internal/redistest"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// Two transports, as two replicas would make them, share one store: their
// requests to one model of one route split its limit instead of each
// taking all of it (together they would send twice the limit, and drown
// in 429s). It runs in real time (Redis's clock), at 20 requests a second
// for five seconds.
func TestWithStoreSplitsTheLimit(t *testing.T) {
	rdb := redistest.Client(t)
	const rps, run = 20, 5 * time.Second
	sim := conformance.NewServer(conformance.Config{
		Limits: map[string]conformance.Limit{conformance.Chat: {RPM: rps * 60}},
	})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	prefix := fmt.Sprintf("steady:test:%s:%d:", t.Name(), time.Now().UnixNano())

	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var calls, ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		c := redis.NewClient(&redis.Options{Addr: rdb.Options().Addr})
		defer c.Close()
		base := http.DefaultTransport.(*http.Transport).Clone()
		defer base.CloseIdleConnections()
		client := &http.Client{Transport: together.NewTransport(base,
			together.WithAPIKey("k"), together.WithRate(together.RouteChat, rps*60),
			together.WithStore(redisbucket.New(c, redisbucket.WithPrefix(prefix), redisbucket.WithReplicas(2),
				redisbucket.WithTimeout(2*time.Second))))} // a busy test machine is no outage
		for w := range 8 {
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					calls.Add(1)
					rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					body := fmt.Sprintf(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"%d-%d"}]}`, w, i)
					req, err := http.NewRequestWithContext(rctx, http.MethodPost, srv.URL+"/v1/chat/completions", strings.NewReader(body))
					if !assert.NoError(t, err) {
						rcancel()
						return
					}
					resp, err := client.Do(req)
					if err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							ok.Add(1)
						}
					} else {
						failed.Add(1)
					}
					rcancel()
				}
			})
		}
	}
	wg.Wait()

	st := sim.Stats()
	t.Logf("calls=%d ok=%d errors=%d; server: arrivals=%d 429=%d", calls.Load(), ok.Load(), failed.Load(), st.Arrivals, st.TooMany)
	arr := sim.Arrivals()
	most, lo := 0, 0
	for hi := range arr {
		for arr[hi].At-arr[lo].At >= time.Second {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	assert.LessOrEqual(t, most, 2*rps, "never more than the limit plus a second of burst in any second")
	assert.Less(t, float64(st.TooMany), 0.01*float64(st.Arrivals), "429s under 1%%")
	assert.GreaterOrEqual(t, float64(ok.Load()), 0.8*rps*run.Seconds(), "the limit is shared, not wasted")
}

// Replicas of a service share Together's limits through Redis: each makes
// its transport with a store on the same Redis.
func Example_together() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	client := together.NewClient(together.WithStore(redisbucket.New(rdb, redisbucket.WithReplicas(4))))
	_ = client // every replica's requests to a model share its limit
}

// The preset's event hook hears the store too: Redis unreachable, the
// store says it went local through the same hook as every decorator.
func TestThePresetsHookHearsTheStore(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: deadAddr(t), MaxRetries: -1})
	defer rdb.Close()
	var events conformance.EventRecorder
	srv := conformance.NewServer(conformance.Config{})
	store := redisbucket.New(rdb, redisbucket.WithLogger(nil), redisbucket.WithTimeout(50*time.Millisecond))
	client := &http.Client{Transport: together.NewTransport(srv, together.WithStore(store),
		together.WithAPIKey("k"), together.WithBaseURL("http://sim.test/v1"), together.WithEvents(events.Record))}
	req, err := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions",
		strings.NewReader(`{"model":"`+conformance.ScenarioChatModel+`","messages":[{"role":"user","content":"hi"}]}`))
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	var store0 []transport.Event
	for _, e := range events.Events() {
		if e.Kind == transport.EventStore {
			store0 = append(store0, e)
		}
	}
	require.Len(t, store0, 1)
	assert.Equal(t, "local", store0[0].To)
}
