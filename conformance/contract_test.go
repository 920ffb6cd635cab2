package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// passThrough is the smallest middleware that keeps the contract.
func passThrough(next http.RoundTripper) http.RoundTripper { return next }

// retrying is a small retry middleware that keeps the contract, built on
// transport's parts: it replays the body, drains what it throws away, and
// refuses a wait the deadline cannot fit.
func retrying(next http.RoundTripper) http.RoundTripper {
	return retryingWith(next, func(resp *http.Response) time.Duration {
		sig := transport.ParseSignals(resp.Header, time.Now())
		return max(sig.ServerWait(resp.StatusCode), 0)
	})
}

// retryingWith is retrying, each retry after the wait waitOf reads from
// the answer it follows.
func retryingWith(next http.RoundTripper, waitOf func(*http.Response) time.Duration) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(r)
			if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500) ||
				replay.Attempts() == 4 || !replay.CanReplay() {
				return resp, err
			}
			wait := waitOf(resp)
			transport.Drain(resp)
			if err := transport.Sleep(req.Context(), wait); err != nil {
				return nil, err
			}
		}
	})
}

func TestMiddlewarePassThrough(t *testing.T) {
	TestMiddleware(t, passThrough)
}

func TestMiddlewareRetrying(t *testing.T) {
	TestMiddleware(t, retrying, WithRetriesExpected())
}

func TestCheckMiddlewareReportsExercise(t *testing.T) {
	pass := CheckMiddleware(t, passThrough)
	require.True(t, pass.Passed(), "%s", pass)
	assert.False(t, pass.Result(RuleBodyReplayed).Exercised, "a middleware that never retries replays nothing")
	assert.False(t, pass.Result(RuleDiscardedDrained).Exercised)

	retry := CheckMiddleware(t, retrying, WithRetriesExpected())
	require.True(t, retry.Passed(), "%s", retry)
	for _, rule := range Rules() {
		assert.True(t, retry.Result(rule).Exercised, "rule %s", rule)
	}

	// Expected retries that never come are a failure of the rules they exercise.
	expect := CheckMiddleware(t, passThrough, WithRetriesExpected())
	assert.Equal(t, []Rule{RuleBodyReplayed, RuleDiscardedDrained}, expect.Failed())
}

// broken middlewares, each breaking the contract in one way.

func mutatesHeaders(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		req.Header.Set("User-Agent", "mutated")
		return next.RoundTrip(req)
	})
}

// leaksRequestBody buffers the body for retries and forgets to close the
// caller's.
func leaksRequestBody(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(req.Context())
		if req.Body != nil {
			data, err := io.ReadAll(req.Body)
			if err != nil {
				return nil, err
			}
			r.Body = io.NopCloser(bytes.NewReader(data))
		}
		return next.RoundTrip(r)
	})
}

// readsReturnedBody buffers the response it returns.
func readsReturnedBody(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(data))
		return resp, nil
	})
}

// hidesUpgradedConnection wraps every body it returns in one that reads
// and closes it, as it comes, but does not write: a WebSocket's 101 loses
// its connection.
func hidesUpgradedConnection(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		resp.Body = struct{ io.ReadCloser }{resp.Body}
		return resp, nil
	})
}

// ignoresContext sends every attempt with a context of its own.
func ignoresContext(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		return next.RoundTrip(req.WithContext(context.WithoutCancel(req.Context())))
	})
}

// sleepsPastDeadline retries after the server's wait without asking whether
// the deadline allows it.
func sleepsPastDeadline(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		transport.Drain(resp)
		sig := transport.ParseSignals(resp.Header, time.Now())
		wait := sig.ServerWait(resp.StatusCode)
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		r := req.Clone(req.Context())
		if req.Body != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		return next.RoundTrip(r)
	})
}

// waitsOutDeadline, told to come back after the deadline, sleeps until a
// moment before it and then gives up: it returns before the deadline, but
// the wait the deadline could not fit is not refused at once.
func waitsOutDeadline(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		deadline, ok := req.Context().Deadline()
		if !ok {
			return resp, nil
		}
		transport.Drain(resp)
		if d := time.Until(deadline) - time.Millisecond; d > 0 {
			time.Sleep(d)
		}
		return nil, fmt.Errorf("would wait past the deadline: %w", context.DeadlineExceeded)
	})
}

// retriesAtOnce retries a 429 or 5xx as retrying does, but at once,
// whatever wait the server asked for.
func retriesAtOnce(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(r)
			if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500) ||
				replay.Attempts() == 4 || !replay.CanReplay() {
				return resp, err
			}
			transport.Drain(resp)
		}
	})
}

// waitsOnlyOn429 retries as retrying does, but honours Retry-After only
// on a 429: an overloaded answer's wait is ignored.
func waitsOnlyOn429(next http.RoundTripper) http.RoundTripper {
	return retryingWith(next, func(resp *http.Response) time.Duration {
		if resp.StatusCode != http.StatusTooManyRequests {
			return 0
		}
		sig := transport.ParseSignals(resp.Header, time.Now())
		return max(sig.ServerWait(resp.StatusCode), 0)
	})
}

// givesUpWithError retries as retrying does, but when it gives up it throws
// the last answer away and returns an error of its own: the caller loses
// the server's answer.
func givesUpWithError(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := retrying(next).RoundTrip(req)
		if err == nil && resp.StatusCode >= 500 {
			transport.Drain(resp)
			return nil, errors.New("giving up")
		}
		return resp, err
	})
}

// refusesRetriesAsUnavailable meets a 5xx with an error matching
// transport.ErrModelUnavailable, as a retry would that a breaker refused.
func refusesRetriesAsUnavailable(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && resp.StatusCode >= 500 {
			transport.Drain(resp)
			return nil, fmt.Errorf("retry refused: %w", transport.ErrModelUnavailable)
		}
		return resp, err
	})
}

// dropsCalls refuses every POST without GetBody with an error of its own,
// never sending it.
func dropsCalls(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil && req.GetBody == nil {
			_ = req.Body.Close()
			return nil, errors.New("queue full")
		}
		return next.RoundTrip(req)
	})
}

// pacesPastDeadline lets one call through every 100 ms, in the order they
// came, each waiting for its turn until its context ends: a limiter that
// never asks whether the deadline leaves time for the wait.
func pacesPastDeadline(next http.RoundTripper) http.RoundTripper {
	var (
		mu     sync.Mutex
		nextAt time.Time
	)
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		at := nextAt
		if now := time.Now(); at.Before(now) {
			at = now
		}
		nextAt = at.Add(100 * time.Millisecond)
		mu.Unlock()
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, req.Context().Err()
		}
		return next.RoundTrip(req)
	})
}

// pausesForDays pauses every later call for as long as a 429's
// Retry-After says, however long: one garbage answer stops the transport.
func pausesForDays(next http.RoundTripper) http.RoundTripper {
	var (
		mu    sync.Mutex
		until time.Time
	)
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		mu.Lock()
		wait := time.Until(until)
		mu.Unlock()
		if err := transport.Sleep(req.Context(), wait); err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, err
		}
		resp, err := next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusTooManyRequests {
			sig := transport.ParseSignals(resp.Header, time.Now())
			if w := sig.ServerWait(resp.StatusCode); w > 0 {
				mu.Lock()
				until = time.Now().Add(w)
				mu.Unlock()
			}
		}
		return resp, err
	})
}

// stripsRateHeaders returns the inner transport's response without its
// Retry-After and rate headers, which it keeps for itself: the caller's
// SDK, which retries by them, never sees them.
func stripsRateHeaders(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		out := *resp
		out.Header = resp.Header.Clone()
		out.Header.Del("Retry-After")
		out.Header.Del("X-Ratelimit-Reset")
		return &out, nil
	})
}

// answersAndFails returns the response and an error for answers it
// dislikes.
func answersAndFails(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil && resp.StatusCode >= 400 {
			return resp, fmt.Errorf("status %d", resp.StatusCode)
		}
		return resp, err
	})
}

// resendsConsumedBody retries with the body the first attempt consumed,
// and does not close what it throws away.
func resendsConsumedBody(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
			return resp, err
		}
		return next.RoundTrip(req.Clone(req.Context()))
	})
}

// closesUndrained retries 5xx with GetBody at once (whatever Retry-After
// says), closing what it throws away without reading it.
func closesUndrained(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil || resp.StatusCode < 500 || (req.Body != nil && req.GetBody == nil) {
			return resp, err
		}
		_ = resp.Body.Close()
		r := req.Clone(req.Context())
		if req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		return next.RoundTrip(r)
	})
}

// resendsAfterReset sends the request again when the connection fails,
// whatever its method: a chat completion the server may have processed is
// billed twice.
func resendsAfterReset(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(r)
			if err == nil || replay.Attempts() == 3 || !replay.CanReplay() || req.Context().Err() != nil {
				return resp, err
			}
		}
	})
}

// resendsUnlessReset knows that a reset connection may have carried the
// request, but sends it again after any other failure: a connection the
// server closed after reading the request included.
func resendsUnlessReset(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			resp, err := next.RoundTrip(r)
			if err == nil || errors.Is(err, syscall.ECONNRESET) || replay.Attempts() == 3 || !replay.CanReplay() || req.Context().Err() != nil {
				return resp, err
			}
		}
	})
}

// hedges sends a second copy of a call whose answer is slow (100 ms), as
// hedged requests do, returns the answer that comes first and drains the
// other: a chat completion the server is working on is generated, and
// billed, twice.
func hedges(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		type answer struct {
			resp *http.Response
			err  error
		}
		answers := make(chan answer, 2)
		send := func() bool {
			r, err := replay.Request()
			if err != nil {
				return false
			}
			go func() {
				resp, err := next.RoundTrip(r)
				answers <- answer{resp, err}
			}()
			return true
		}
		if !send() {
			replay.Close()
			return nil, errors.New("nothing sent")
		}
		sent := 1
		t := time.NewTimer(100 * time.Millisecond)
		defer t.Stop()
		var first answer
		select {
		case first = <-answers:
		case <-t.C:
			if send() {
				sent++
			}
			first = <-answers
		}
		go func() {
			defer replay.Close()
			for range sent - 1 {
				if other := <-answers; other.err == nil {
					transport.Drain(other.resp)
				}
			}
		}()
		return first.resp, first.err
	})
}

// leaksSecret puts the request's headers in its errors.
func leaksSecret(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, fmt.Errorf("request with headers %v: %w", req.Header, err)
		}
		return resp, nil
	})
}

// sendsKeyElsewhere sends every request to a mirror of the API on another
// host, its Authorization header and all.
func sendsKeyElsewhere(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		r := req.Clone(req.Context())
		r.URL.Host = "mirror.example.net"
		return next.RoundTrip(r)
	})
}

// leaksGoroutine leaves a goroutine behind each call for a minute.
func leaksGoroutine(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		go time.Sleep(time.Minute)
		return next.RoundTrip(req)
	})
}

// swapsResponses pairs callers that answer at about the same time and
// hands each the other's response: race-free, and still wrong under
// concurrent use.
func swapsResponses(next http.RoundTripper) http.RoundTripper {
	type pair struct {
		give *http.Response
		take chan *http.Response
	}
	var (
		mu      sync.Mutex
		waiting *pair
	)
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		if p := waiting; p != nil {
			waiting = nil
			mu.Unlock()
			p.take <- resp
			return p.give, nil
		}
		p := &pair{give: resp, take: make(chan *http.Response, 1)}
		waiting = p
		mu.Unlock()
		t := time.NewTimer(time.Millisecond)
		defer t.Stop()
		select {
		case other := <-p.take:
			return other, nil
		case <-t.C:
		}
		mu.Lock()
		if waiting == p { // no partner came
			waiting = nil
			mu.Unlock()
			return resp, nil
		}
		mu.Unlock()
		return <-p.take, nil
	})
}

// retriesForever retries every failure at once, whatever its context says.
func retriesForever(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		for {
			r := req.Clone(context.WithoutCancel(req.Context()))
			if req.GetBody != nil {
				r.Body, _ = req.GetBody()
			}
			resp, err := next.RoundTrip(r)
			if err == nil && resp.StatusCode < 500 {
				return resp, nil
			}
			transport.Drain(resp)
		}
	})
}

// retriesUncancellably retries 5xx at once (whatever Retry-After says), and
// sends each retry with a context cut loose from the caller's cancellation
// and deadline (its values kept): a retry the caller can no longer stop.
func retriesUncancellably(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		var replay transport.Replay
		if err := replay.Reset(req, 0); err != nil {
			return nil, err
		}
		defer replay.Close()
		for {
			r, err := replay.Request()
			if err != nil {
				return nil, err
			}
			if replay.Attempts() > 1 {
				r = r.WithContext(context.WithoutCancel(r.Context()))
			}
			resp, err := next.RoundTrip(r)
			if err != nil || resp.StatusCode < 500 || replay.Attempts() == 4 || !replay.CanReplay() {
				return resp, err
			}
			transport.Drain(resp)
		}
	})
}

// The suite stops a middleware that never stops retrying, and says so.
func TestCheckMiddlewareStopsEndlessRetries(t *testing.T) {
	rep := CheckMiddleware(t, retriesForever)
	assert.Contains(t, rep.Failed(), RuleResponseOrError, "%s", rep)
	assert.Contains(t, rep.Failed(), RuleContextCanceled, "%s", rep)
	assert.Contains(t, rep.String(), "503 every time: RoundTrip had not returned after 1h0m0s (virtual time; 51 attempts reached the inner transport)")
	assert.Contains(t, rep.String(), "the suite ended its goroutine")
}

func TestCheckMiddlewareDetectsBreakage(t *testing.T) {
	for _, tc := range []struct {
		name string
		mw   transport.Middleware
		want []Rule
	}{
		{"mutates headers", mutatesHeaders, []Rule{RuleRequestUnmodified}},
		{"leaks request body", leaksRequestBody, []Rule{RuleRequestBodyClosed}},
		// The body it reads is put back as one that only reads: a 101's
		// connection is lost too.
		{"reads returned body", readsReturnedBody, []Rule{RuleReturnedNotRead, RuleResponseIntact}},
		{"hides an upgraded connection", hidesUpgradedConnection, []Rule{RuleResponseIntact}},
		{"ignores context", ignoresContext, []Rule{RuleContextCanceled, RuleContextDeadline}},
		{"sleeps past deadline", sleepsPastDeadline, []Rule{RuleContextDeadline}},
		{"waits out deadline", waitsOutDeadline, []Rule{RuleContextDeadline}},
		{"paces past deadline", pacesPastDeadline, []Rule{RuleContextDeadline}},
		{"pauses for days", pausesForDays, []Rule{RulePauseBounded}},
		{"strips rate headers", stripsRateHeaders, []Rule{RuleResponseIntact}},
		{"retries at once", retriesAtOnce, []Rule{RuleRetryAfter}},
		{"waits only on a 429", waitsOnlyOn429, []Rule{RuleRetryAfter}},
		{"gives up with an error", givesUpWithError, []Rule{RuleAnswerKept}},
		{"drops calls", dropsCalls, []Rule{RuleAnswerKept}},
		{"answers and fails", answersAndFails, []Rule{RuleResponseOrError}},
		{"resends consumed body", resendsConsumedBody, []Rule{RuleBodyReplayed, RuleDiscardedDrained}},
		{"closes undrained", closesUndrained, []Rule{RuleRetryAfter, RuleDiscardedDrained}},
		{"resends after reset", resendsAfterReset, []Rule{RuleNotResent}},
		{"resends unless reset", resendsUnlessReset, []Rule{RuleNotResent}},
		{"hedges", hedges, []Rule{RuleNotResent}},
		{"leaks secret", leaksSecret, []Rule{RuleSecretHidden}},
		{"sends the key to another host", sendsKeyElsewhere, []Rule{RuleSecretHidden}},
		{"leaks goroutine", leaksGoroutine, []Rule{RuleNoGoroutineLeak}},
		{"swaps responses", swapsResponses, []Rule{RuleResponseIntact, RuleConcurrentUse}},
		{"retries uncancellably", retriesUncancellably, []Rule{RuleRetryAfter, RuleContextCanceled, RuleContextDeadline}},
		{"nil", nil, []Rule{RuleResponseOrError}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckMiddleware(t, tc.mw)
			assert.Equal(t, tc.want, rep.Failed(), "%s", rep)
			for _, rule := range tc.want {
				assert.True(t, rep.Result(rule).Exercised, "a broken rule was exercised: %s", rule)
			}
		})
	}
}

// TestMiddleware fails the subtest of each broken rule, naming the rule.
// Failing is what it is for, so it runs in a child test process whose
// failure this test expects.
func TestTestMiddlewareFailsBrokenRules(t *testing.T) {
	if os.Getenv("STEADY_CONFORMANCE_CHILD") == "1" {
		TestMiddleware(t, sleepsPastDeadline)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTestMiddlewareFailsBrokenRules$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "STEADY_CONFORMANCE_CHILD=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child test passed:\n%s", out)
	assert.Contains(t, string(out), "--- FAIL: TestTestMiddlewareFailsBrokenRules/deadline")
	assert.Contains(t, string(out), "context-deadline broken: 429 with Retry-After: 3600 and a 10s deadline: RoundTrip returned at its deadline")
	assert.Contains(t, string(out), "--- PASS: TestTestMiddlewareFailsBrokenRules/answers", "a group where no rule broke passes")
}

// A breaker's refusal is an answer lost for a call sent alone, and the
// model judged down among calls sent at once, whose failures may have
// opened it: there, which calls meet it depends on the order in which the
// outcomes arrived.
func TestABreakersRefusalAmongConcurrentCallsIsNoAnswerLost(t *testing.T) {
	rep := CheckMiddleware(t, refusesRetriesAsUnavailable)
	assert.Equal(t, []Rule{RuleAnswerKept, RuleContextDeadline}, rep.Failed(), "%s", rep)
	failures := rep.Result(RuleAnswerKept).Failures
	require.NotEmpty(t, failures)
	for _, f := range failures {
		assert.NotContains(t, f, "caller ", "a concurrent call's refusal")
	}
}

func TestWithGoroutines(t *testing.T) {
	// A caller alone has nobody to swap answers with; two have.
	assert.Empty(t, CheckMiddleware(t, swapsResponses, WithGoroutines(1)).Failed())
	assert.Contains(t, CheckMiddleware(t, swapsResponses, WithGoroutines(2)).Failed(), RuleConcurrentUse)
}

func TestRequestSnapshotDiff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(*http.Request)
		want   string
	}{
		{"method", func(r *http.Request) { r.Method = http.MethodPut }, `its Method changed from "POST" to "PUT"`},
		{"URL replaced", func(r *http.Request) { u := *r.URL; r.URL = &u }, "its URL replaced"},
		{"URL edited", func(r *http.Request) { r.URL.Path = "/v1/completions" }, "its URL changed from https://api.conformance.test/v1/chat/completions to https://api.conformance.test/v1/completions"},
		{"header map replaced", func(r *http.Request) { r.Header = r.Header.Clone() }, "its Header map replaced"},
		{"header value", func(r *http.Request) { r.Header.Set("Authorization", "Bearer other") }, "its Header changed ([Authorization])"},
		{"header added", func(r *http.Request) { r.Header.Add("X-Extra", "1") }, "its Header changed ([X-Extra])"},
		{"header removed", func(r *http.Request) { r.Header.Del("Content-Type") }, "its Header changed ([Content-Type])"},
		{"body", func(r *http.Request) { r.Body = io.NopCloser(bytes.NewReader(nil)) }, "its Body replaced (by a io.nopCloserWriterTo)"},
		{"get body", func(r *http.Request) { r.GetBody = nil }, "its GetBody replaced"},
		{"content length", func(r *http.Request) { r.ContentLength = -1 }, "its ContentLength changed from 2 to -1"},
		{"transfer encoding", func(r *http.Request) { r.TransferEncoding = []string{"chunked"} }, "its TransferEncoding changed"},
		{"close", func(r *http.Request) { r.Close = true }, "its Close changed"},
		{"host", func(r *http.Request) { r.Host = "example.com" }, `its Host changed from "api.conformance.test" to "example.com"`},
		{"trailer", func(r *http.Request) { r.Trailer = http.Header{"X-Sum": nil} }, "its Trailer changed ([X-Sum])"},
		{"context", func(r *http.Request) { *r = *r.WithContext(context.WithoutCancel(r.Context())) }, "its context replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, "https://api.conformance.test/v1/chat/completions", bytes.NewReader([]byte("{}")))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+contractSecret)
			req.Header.Set("Content-Type", "application/json")
			snap := snapshotOf(req)
			require.Empty(t, snap.diff(req))
			tc.modify(req)
			assert.Equal(t, []string{tc.want}, snap.diff(req))
		})
	}
}

func TestReportString(t *testing.T) {
	rep := Report{Results: []Result{
		{Rule: RuleRequestUnmodified, Exercised: true},
		{Rule: RuleBodyReplayed},
		{Rule: RuleResponseOrError, Exercised: true, Failures: []string{"answers: both", "retries: both"}},
	}}
	assert.Equal(t, "request-unmodified: pass\n"+
		"body-replayed: pass (not exercised)\n"+
		"response-or-error: FAIL: answers: both\n\tretries: both\n", rep.String())
	assert.Equal(t, []Rule{RuleResponseOrError}, rep.Failed())
	assert.False(t, rep.Passed())
	assert.Equal(t, Result{Rule: RuleSecretHidden}, rep.Result(RuleSecretHidden))
}
