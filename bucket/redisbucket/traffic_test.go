package redisbucket_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/transport"
)

// The traffic tests run at a short real-time scale: Redis's clock is real,
// so they cannot run in a synctest bubble. The limit is 20 requests a
// second, per second (Together's rule), shared by every replica.
const (
	limitRPS = 20
	replicas = 4
	apiKey   = "test-key"
)

func simulator() *conformance.Server {
	return conformance.NewServer(conformance.Config{
		Limits: map[string]conformance.Limit{conformance.Chat: {RPM: limitRPS * 60}},
	})
}

// tally counts what the callers got back: every call ends in exactly one
// of these, so ok+tooMany+other+errs is the calls made.
type tally struct {
	calls, ok, tooMany, other, errs atomic.Int64

	mu     sync.Mutex
	errMsg map[string]int // errors by message
}

func (t *tally) failed(err error) {
	t.errs.Add(1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.errMsg == nil {
		t.errMsg = map[string]int{}
	}
	t.errMsg[err.Error()]++
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("calls=%d ok=%d 429=%d other=%d errors=%d %v",
		t.calls.Load(), t.ok.Load(), t.tooMany.Load(), t.other.Load(), t.errs.Load(), t.errMsg)
}

// replica is one process's stack: a store on its own Redis connection, a
// bucket on the shared key, and bucket.Limit around its own transport.
type replica struct {
	rdb    *redis.Client
	store  *redisbucket.Store
	bucket *bucket.Bucket
	base   *http.Transport
	client *http.Client
}

func newReplica(addr, key string, opts ...redisbucket.Option) *replica {
	r := &replica{rdb: redis.NewClient(&redis.Options{Addr: addr})}
	r.store = newStore(r.rdb, append([]redisbucket.Option{redisbucket.WithReplicas(replicas)}, opts...)...)
	r.bucket = bucket.New(bucket.PerSecond(limitRPS), bucket.WithStore(r.store, key))
	r.base = &http.Transport{MaxIdleConnsPerHost: 64}
	r.client = &http.Client{Transport: transport.Chain(r.base, bucket.Limit(r.bucket))}
	return r
}

func (r *replica) close() {
	r.base.CloseIdleConnections()
	r.rdb.Close()
}

// drive sends from workers goroutines until stop, each request with a
// deadline of timeout, and tallies the answers.
func drive(ctx context.Context, client *http.Client, url string, workers int, timeout time.Duration, t *tally) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				call(ctx, client, url, fmt.Sprintf("%d-%d", w, i), timeout, t)
			}
		})
	}
	wg.Wait()
}

func call(stop context.Context, client *http.Client, url, id string, timeout time.Duration, t *tally) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(stop), timeout)
	defer cancel()
	body := `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"` + id + `"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	t.calls.Add(1)
	resp, err := client.Do(req)
	if err != nil {
		t.failed(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		t.ok.Add(1)
	case http.StatusTooManyRequests:
		t.tooMany.Add(1)
	default:
		t.other.Add(1)
	}
}

// maxIn is the most arrivals of the key in any span of w.
func maxIn(arrivals []conformance.Arrival, w time.Duration) int {
	most, lo := 0, 0
	for hi := range arrivals {
		for arrivals[hi].At-arrivals[lo].At >= w {
			lo++
		}
		most = max(most, hi-lo+1)
	}
	return most
}

// checkServer asserts the rules on what the server saw: never more
// than the limit plus one second of burst in any span, and fewer than 1%
// 429s.
func checkServer(t *testing.T, srv *conformance.Server) {
	t.Helper()
	arr := srv.Arrivals()
	st := srv.Stats()
	for _, w := range []time.Duration{time.Second, 2 * time.Second, 5 * time.Second} {
		allowed := int(limitRPS*w.Seconds()) + limitRPS
		got := maxIn(arr, w)
		t.Logf("most arrivals in %v: %d (limit plus a second of burst: %d)", w, got, allowed)
		assert.LessOrEqual(t, got, allowed, "arrivals in %v", w)
	}
	t.Logf("server: arrivals=%d ok=%d 429=%d", st.Arrivals, st.OK, st.TooMany)
	assert.Less(t, float64(st.TooMany), 0.01*float64(st.Arrivals), "429s under 1%%")
}
