package transport_test

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// outermost is a transport of one's own that reads each request once, as
// a preset does, and hands it with its Info to a stack of steady's
// decorators. None of them keeps the Info once it returns, so ReadAndSend
// reuses it for the next request: it allocates none.
type outermost struct{ stack transport.InfoRoundTripper }

func (o *outermost) RoundTrip(req *http.Request) (*http.Response, error) {
	return transport.ReadAndSend(req, 0, o.stack.RoundTripInfo)
}

func ExampleReadAndSend() {
	base := transport.Base(transport.Func(func(req *http.Request) (*http.Response, error) {
		fmt.Println("sent", req.URL.Path)
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	}))
	rt := &outermost{stack: retry.New()(base).(transport.InfoRoundTripper)}

	req, err := http.NewRequest(http.MethodPost, "https://api.openai.com/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		panic(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output:
	// sent /v1/chat/completions
	// 200
}
