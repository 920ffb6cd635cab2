package transport_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/steadyapi/steady/transport"
)

func ExampleChain() {
	logging := func(name string) transport.Middleware {
		return func(next http.RoundTripper) http.RoundTripper {
			return transport.Func(func(req *http.Request) (*http.Response, error) {
				fmt.Println("enter", name)
				return next.RoundTrip(req)
			})
		}
	}
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		fmt.Println("base", req.URL.Path)
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})
	client := &http.Client{Transport: transport.Chain(base, logging("outer"), logging("inner"))}
	resp, err := client.Get("http://api.test/v1/models")
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// enter outer
	// enter inner
	// base /v1/models
	// 200
}

func ExampleParseSignals() {
	h := http.Header{}
	h.Set("X-Ratelimit-Limit-Requests", "500")
	h.Set("X-Ratelimit-Remaining-Requests", "0")
	h.Set("X-Ratelimit-Reset-Requests", "1.5s")
	s := transport.ParseSignals(h, time.Now())
	fmt.Println(s.Requests.Limit, s.Requests.Remaining, s.Requests.Reset)
	fmt.Println("wait after a 429:", s.ServerWait(http.StatusTooManyRequests))
	// Output:
	// 500 0 1.5s
	// wait after a 429: 1.5s
}
