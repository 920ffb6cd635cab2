package conformance_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/steadyapi/steady/conformance"
)

// A provider that allows 60 requests a minute, enforced per second as
// Together does: of a burst of three, one passes. The server is the
// client's transport, so nothing touches the network; in a
// testing/synctest bubble the same code runs in virtual time.
func ExampleServer() {
	srv := conformance.NewServer(conformance.Config{
		Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 60}},
	})
	client := &http.Client{Transport: srv}
	for range 3 {
		resp, err := client.Post("http://provider.test/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[{"role":"user","content":"hi"}]}`))
		if err != nil {
			fmt.Println(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		fmt.Println(resp.Status, resp.Header.Get("X-Ratelimit-Reset") != "")
	}
	for _, a := range srv.Arrivals() {
		fmt.Println(a.Endpoint, a.Status, "attempt", a.Attempt)
	}
	fmt.Printf("%+v\n", srv.Stats())
	// Output:
	// 200 OK false
	// 429 Too Many Requests true
	// 429 Too Many Requests true
	// chat 200 attempt 1
	// chat 429 attempt 2
	// chat 429 attempt 3
	// {Arrivals:3 OK:1 TooMany:2 ServerErrors:0 Other:0}
}

// Faults are scripted in time and share, and drawn from the seed, so a
// flaky provider fails the same requests on every run.
func ExampleFault() {
	srv := conformance.NewServer(conformance.Config{
		Seed: 1,
		Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 503, Model: "mistralai/Mixtral-8x7B-Instruct-v0.1"},
			{Kind: conformance.FaultReset, Endpoint: conformance.Embeddings},
		},
	})
	client := &http.Client{Transport: srv}
	for _, r := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"mistralai/Mixtral-8x7B-Instruct-v0.1","messages":[]}`},
		{"/v1/chat/completions", `{"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","messages":[]}`},
		{"/v1/chat/completions", `{"model":"no/such-model","messages":[]}`},
		{"/v1/embeddings", `{"model":"BAAI/bge-large-en-v1.5","input":"hello"}`},
	} {
		resp, err := client.Post("http://provider.test"+r.path, "application/json", strings.NewReader(r.body))
		if err != nil {
			fmt.Println("error")
			continue
		}
		_ = resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 503
	// 200
	// 404
	// error
}
