package retry_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// fakeServer answers with the given statuses in turn (the last repeating),
// each 429 asking for a 10 ms wait.
func fakeServer(statuses ...int) http.RoundTripper {
	n := 0
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		status := statuses[min(n, len(statuses)-1)]
		n++
		h := http.Header{}
		if status == http.StatusTooManyRequests {
			h.Set("Retry-After-Ms", "10")
		}
		body := fmt.Sprintf(`{"attempt":%d}`, n)
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}, nil
	})
}

func ExampleNew() {
	client := &http.Client{Transport: transport.Chain(
		fakeServer(http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusOK),
		retry.New(
			retry.WithEvents(func(e transport.Event) {
				if e.Kind == transport.EventRetry {
					fmt.Printf("%s: attempt %d got %d, retrying after the %s's wait\n",
						e.Endpoint, e.Attempt, e.Status, e.Reason)
				}
			}),
			retry.WithRand(func(int64) int64 { return 0 }), // no jitter, so the example runs at once
		),
	)}
	resp, err := client.Post("https://api.together.xyz/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"m"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// chat: attempt 1 got 429, retrying after the server's wait
	// chat: attempt 2 got 503, retrying after the backoff's wait
	// 200 {"attempt":3}
}

// When the retries run out, the caller gets the server's last answer, not
// an error: its status and body say what went wrong.
func ExampleNew_givingUp() {
	rt := retry.New(retry.WithMaxRetries(2), retry.WithRand(func(int64) int64 { return 0 }))(
		fakeServer(http.StatusServiceUnavailable))
	req, _ := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 503 {"attempt":3}
}

// A failure without a response is an *Error that counts the attempts and
// still matches its cause.
func ExampleError() {
	refused := transport.Func(func(*http.Request) (*http.Response, error) {
		return nil, syscall.ECONNREFUSED
	})
	rt := retry.New(retry.WithMaxRetries(2), retry.WithRand(func(int64) int64 { return 0 }))(refused)
	req, _ := http.NewRequest(http.MethodGet, "https://api.together.xyz/v1/models", nil)
	_, err := rt.RoundTrip(req)
	fmt.Println(err)
	fmt.Println(errors.Is(err, syscall.ECONNREFUSED))
	// Output:
	// steady/retry: 3 attempts: connection refused
	// true
}

// A rule can see what Inspect read of the request. Here a fine-tuned model
// still being deployed answers 404 for a while, so its 404s are retried;
// another model's 404 is returned at once.
func ExampleWithShouldRetryInfo() {
	const warming = "acme/my-finetune"
	rule := func(resp *http.Response, err error, info *transport.Info) bool {
		if resp != nil && resp.StatusCode == http.StatusNotFound && info != nil && info.Model == warming {
			return true
		}
		return retry.ShouldRetryInfo(resp, err, info)
	}
	for _, model := range []string{warming, "acme/other"} {
		rt := transport.Chain(fakeServer(http.StatusNotFound, http.StatusNotFound, http.StatusOK),
			transport.Inspect(),
			retry.New(retry.WithShouldRetryInfo(rule), retry.WithRand(func(int64) int64 { return 0 })))
		req, _ := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
			strings.NewReader(`{"model":"`+model+`"}`))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(model, resp.StatusCode, string(body))
	}
	// Output:
	// acme/my-finetune 200 {"attempt":3}
	// acme/other 404 {"attempt":1}
}
