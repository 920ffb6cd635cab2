package conformance

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/transport"
)

// detachesAttempts sends each attempt with a context that keeps the
// caller's values but not its cancellation, and returns at once when the
// caller's context ends, leaving the attempt running against the server:
// RuleContextCanceled says "attempts carry a context derived from the
// caller's", so the in-flight request is not cancelled with the call.
func detachesAttempts(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		type result struct {
			resp *http.Response
			err  error
		}
		ch := make(chan result, 1)
		attempt := req.WithContext(context.WithoutCancel(req.Context()))
		go func() {
			resp, err := next.RoundTrip(attempt)
			ch <- result{resp, err}
		}()
		select {
		case r := <-ch:
			return r.resp, r.err
		case <-req.Context().Done():
			go func() { // the attempt runs on; its answer is thrown away when it comes
				if r := <-ch; r.resp != nil {
					transport.Drain(r.resp)
				}
			}()
			return nil, req.Context().Err()
		}
	})
}

func TestDetachedAttemptsBreakContextCanceled(t *testing.T) {
	rep := CheckMiddleware(t, detachesAttempts)
	assert.Contains(t, rep.Failed(), RuleContextCanceled, "%s", rep)
}

// The concurrent group's 503 and 429 answers are meant to be error bodies
// of the provider's form that name their call; a middleware that reads the
// error's type (a 429's dynamic_request_limited) must be able to parse them.
func TestSampleErrorIsJSON(t *testing.T) {
	b := sampleError("call-7", "dynamic_request_limited")
	var e struct {
		Error struct{ Type string } `json:"error"`
	}
	assert.NoError(t, json.Unmarshal(b, &e), "%s", b)
	assert.Equal(t, "dynamic_request_limited", e.Error.Type)
	assert.Contains(t, string(b), strconv.Quote("call-7"), "names its call as groupConcurrent looks for it")
}

// returnsFirstAnswer retries a 429 or 5xx as retrying does, but hands the
// caller the first answer it got, draining the later ones: the 200 the
// server generated (and billed) for the retry is thrown away and the
// caller gets the stale 503. RuleAnswerKept: "no call is lost ... the
// inner transport answered the last attempt (the answer ...) goes to the
// caller".
func returnsFirstAnswer(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		var first *http.Response
		for {
			r, err := replay.Request()
			if err != nil {
				return first, nil
			}
			resp, err := next.RoundTrip(r)
			if err != nil {
				if first != nil {
					transport.Drain(first)
				}
				return nil, err
			}
			if first == nil {
				first = resp
			} else {
				transport.Drain(resp)
			}
			if (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500) ||
				replay.Attempts() == 4 || !replay.CanReplay() {
				return first, nil
			}
			sig := transport.ParseSignals(resp.Header, time.Now())
			if err := transport.Sleep(req.Context(), max(sig.ServerWait(resp.StatusCode), 0)); err != nil {
				transport.Drain(first)
				return nil, err
			}
		}
	})
}

func TestAStaleAnswerIsALostAnswer(t *testing.T) {
	rep := CheckMiddleware(t, returnsFirstAnswer)
	assert.Contains(t, rep.Failed(), RuleAnswerKept, "%s", rep)
}
