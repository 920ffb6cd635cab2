package slogobserve_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// A retry decorator logging its events: the first attempt is answered 503,
// the second 200. The handler drops the time so the output is stable.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))

	calls := 0
	server := transport.Func(func(req *http.Request) (*http.Response, error) {
		calls++
		status := http.StatusServiceUnavailable
		if calls > 1 {
			status = http.StatusOK
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	client := &http.Client{Transport: transport.Chain(server, retry.New(
		retry.WithEvents(slogobserve.New(logger)),
		retry.WithRand(func(int64) int64 { return 0 }), // no backoff, for the example
	))}

	req, _ := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", http.NoBody)
	req.Header.Set("Authorization", "Bearer never-logged")
	resp, err := client.Do(req)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()
	// Output:
	// level=DEBUG msg=retrying event=retry endpoint=chat wait=0s status=503 attempt=1 reason=backoff
	// level=DEBUG msg="request done" event=done endpoint=chat status=200 attempt=2
}

// The level of each event, as [slogobserve.New] logs it.
func ExampleLevel() {
	for _, e := range []transport.Event{
		{Kind: transport.EventWaited},
		{Kind: transport.EventPaused},
		{Kind: transport.EventBreaker, From: "closed", To: "open"},
		{Kind: transport.EventGaveUp},
	} {
		fmt.Printf("%v: %v\n", e.Kind, slogobserve.Level(e))
	}
	// Output:
	// waited: DEBUG
	// paused: INFO
	// breaker: WARN
	// gave up: WARN
}
