package redisbucket_test

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/bucket/redisbucket"
	"github.com/steadyapi/steady/transport"
)

// Four replicas of a service share one API key: each makes its bucket on
// the same store and key, and together they send what the key allows.
func Example() {
	// ContextTimeoutEnabled: the client bounds each call by the store's
	// timeout itself, so the store calls it inline.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	store := redisbucket.New(rdb, redisbucket.WithReplicas(4))
	b := bucket.New(bucket.PerMinute(600), bucket.WithStore(store, "chat:meta-llama/Llama-3.3-70B-Instruct-Turbo"))
	client := &http.Client{Transport: transport.Chain(nil, bucket.Limit(b))}
	_ = client // send as usual: every replica's requests share the 600 a minute
}

// When Redis does not answer, the store limits in process at its share of
// the rate (a quarter here: four replicas), says so once, and tries Redis
// again every few seconds. No call waits longer than the store's timeout
// for Redis.
func Example_fallback() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}) // nothing listens
	defer rdb.Close()
	store := redisbucket.New(rdb, redisbucket.WithReplicas(4), redisbucket.WithLogger(nil),
		redisbucket.WithEvents(func(e transport.Event) { fmt.Println(e.Kind, e.From, "->", e.To, "share", e.Rate) }))
	shape := bucket.Shape{PerSecond: 4, Burst: 4}
	for range 3 {
		r, _ := store.Reserve(context.Background(), "chat", 1, -1, shape)
		fmt.Println("wait", r.Wait.Round(100*time.Millisecond))
	}
	// Output:
	// store shared -> local share 0.25
	// wait 0s
	// wait 1s
	// wait 2s
}
