package breaker_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

func Example() {
	// A provider on which one model is down.
	provider := transport.Func(func(req *http.Request) (*http.Response, error) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Body.Close()
		status := http.StatusOK
		if model, _ := transport.FindModel(body); model == "big" {
			status = http.StatusServiceUnavailable
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody}, nil
	})
	rt := transport.Chain(provider, breaker.New(breaker.WithEvents(func(e transport.Event) {
		fmt.Printf("%s: %s -> %s\n", e.Key, e.From, e.To)
	})))
	post := func(model string) {
		req, _ := http.NewRequest(http.MethodPost, "https://api.example.com/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`","messages":[]}`))
		req.Header.Set("Authorization", "Bearer sk-secret")
		resp, err := rt.RoundTrip(req)
		switch {
		case errors.Is(err, breaker.ErrOpen):
			fmt.Println(model, "failed fast:", err)
		case err != nil:
			fmt.Println(model, err)
		default:
			resp.Body.Close()
			fmt.Println(model, resp.StatusCode)
		}
	}
	for range 6 {
		post("big")
	}
	post("small")
	// Output:
	// big 503
	// big 503
	// big 503
	// big 503
	// api.example.com big: closed -> open
	// big 503
	// big failed fast: breaker: "api.example.com big" is open for 30s more
	// small 200
}
