package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing/synctest"
	"time"
)

// scenarioGroup is a subtest of the suite: scenarios that share a bubble.
type scenarioGroup struct {
	name string
	run  func(*groupEnv)
}

func scenarioGroups() []scenarioGroup {
	return []scenarioGroup{
		{"answers", groupAnswers},
		{"retries", groupRetries},
		{"exhausted", groupExhausted},
		{"inner-errors", groupInnerErrors},
		{"streaming", groupStreaming},
		{"upgrade", groupUpgrade},
		{"cancel", groupCancel},
		{"deadline", groupDeadline},
		{"deadline-crowd", groupDeadlineCrowd},
		{"pause", groupPause},
		{"concurrent", groupConcurrent},
	}
}

const (
	sampleChat        = `{"model":"` + ContractModel + `","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}`
	sampleOverloaded  = `{"error":{"message":"The model is currently overloaded. Please try again later.","type":"service_unavailable","param":null,"code":null}}`
	sampleRateLimited = `{"error":{"message":"Rate limit exceeded, please try again later.","type":"dynamic_request_limited","param":null,"code":"rate_limit_exceeded"}}`
	sampleServerError = `{"error":{"message":"Internal server error","type":"server_error","param":null,"code":null}}`
	sampleBadRequest  = `{"error":{"message":"max_tokens must be positive","type":"invalid_request_error","param":"max_tokens","code":null}}`
)

// sampleProxyPage is an HTML error page of the size proxies in front of
// providers answer with (8 KiB): larger than a small drain buffer, smaller
// than transport.DrainLimit, so draining it means reading it to the end.
func sampleProxyPage() []byte {
	return []byte("<html><head><title>503 Service Unavailable</title></head><body><h1>503 Service Unavailable</h1>" +
		strings.Repeat("<!-- upstream temporarily unavailable -->\n", 8<<10/42) + "</body></html>")
}

func sampleOK(id string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"finish_reason":"stop"}]}`, id)
}

// sampleError is an error body that names its call.
func sampleError(id, typ string) []byte {
	return fmt.Appendf(nil, `{"error":{"message":"refused call","type":%q,"param":null,"code":null},"call":%q}`, typ, id)
}

func stepOK(id string) scriptStep { return stepAnswer(http.StatusOK, sampleOK(id)) }

func stepUnavailable(body []byte) scriptStep {
	return stepAnswer(http.StatusServiceUnavailable, body, "Retry-After", "0")
}

func stepTooMany(after string) scriptStep {
	return stepAnswer(http.StatusTooManyRequests, []byte(sampleRateLimited), "Retry-After", after, "X-Ratelimit-Reset", after)
}

// groupAnswers: calls answered at once, each kind of request once.
func groupAnswers(e *groupEnv) {
	for _, s := range []struct {
		name string
		spec callSpec
	}{
		{"200 to a GET without body", callSpec{method: http.MethodGet, steps: []scriptStep{stepOK("answers")}}},
		{"200 to a POST with GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true, steps: []scriptStep{stepOK("answers")}}},
		{"200 to a POST without GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat), steps: []scriptStep{stepOK("answers")}}},
		{"400 to a POST", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true, steps: []scriptStep{stepAnswer(http.StatusBadRequest, []byte(sampleBadRequest))}}},
	} {
		c := e.newCall(s.name, s.spec)
		if e.do(c, RuleResponseOrError) && c.err != nil && c.attemptCount() == 0 {
			// Nothing has failed yet, no deadline presses, and the inner
			// transport answers at once: no reason to refuse the call.
			e.rec.fail(RuleAnswerKept, "%s: RoundTrip returned an error (%v) for a call it never sent, on a new transport with nothing failed yet", c.name, c.err)
		}
	}
}

// groupRetries: answers a middleware that retries would retry once or twice.
func groupRetries(e *groupEnv) {
	for _, s := range []struct {
		name string
		spec callSpec
	}{
		{"503 then 200, body with GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
			steps: []scriptStep{stepUnavailable([]byte(sampleOverloaded)), stepOK("retries")}}},
		{"503 then 200, body without GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat),
			steps: []scriptStep{stepUnavailable([]byte(sampleOverloaded)), stepOK("retries")}}},
		// An overloaded model's own wait: the same request sent again
		// must wait it out (another model need not).
		{"503 with Retry-After: 2 then 200", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
			steps: []scriptStep{stepAnswer(http.StatusServiceUnavailable, []byte(sampleOverloaded), "Retry-After", "2"), stepOK("retries")}}},
		{"429 then 200, GET without body", callSpec{method: http.MethodGet,
			steps: []scriptStep{stepTooMany("0"), stepOK("retries")}}},
		{"503 with an 8 KiB page then 200", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
			steps: []scriptStep{stepUnavailable(sampleProxyPage()), stepOK("retries")}}},
		{"two 503s then 200, body without GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat),
			steps: []scriptStep{stepUnavailable([]byte(sampleOverloaded)), stepUnavailable(sampleProxyPage()), stepOK("retries")}}},
	} {
		e.do(e.newCall(s.name, s.spec), RuleResponseOrError)
	}
}

// groupExhausted: failures that last, so a retrying middleware gives up.
func groupExhausted(e *groupEnv) {
	e.do(e.newCall("503 every time", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{stepUnavailable([]byte(sampleOverloaded))}}), RuleResponseOrError)
	e.do(e.newCall("500 every time, body without GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat),
		steps: []scriptStep{stepAnswer(http.StatusInternalServerError, []byte(sampleServerError))}}), RuleResponseOrError)
}

// groupInnerErrors: the inner transport fails, as a reset connection does.
func groupInnerErrors(e *groupEnv) {
	e.do(e.newCall("inner error every time, body without GetBody", callSpec{method: http.MethodPost, body: []byte(sampleChat),
		steps: []scriptStep{{err: errContractReset}}}), RuleResponseOrError)
	e.do(e.newCall("inner error then 200", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{{err: errContractReset}, stepOK("inner-errors")}}), RuleResponseOrError)
	// Not every connection that fails after the request went out is
	// reset: the server may close it, which net/http reports as io.EOF.
	e.do(e.newCall("connection closed after the request was written, then 200", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{{err: errContractClosedAfterWrite}, stepOK("inner-errors")}}), RuleResponseOrError)
}

// groupStreaming: a 200 whose body the server writes chunk by chunk, as
// server-sent events arrive. Nothing is written until RoundTrip has
// returned, and each chunk only after the caller has read the one before,
// so a middleware that reads, peeks at or buffers the body it returns
// cannot pass.
func groupStreaming(e *groupEnv) {
	c := e.newCall("streamed 200", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{{stream: true}}, stream: true})
	e.start(c, e.build())
	if !e.await(c, RuleReturnedNotRead, "it waited on a body the server had not begun to write: it reads or buffers the body it returns") {
		return
	}
	e.checkReturn(c)
	if c.err != nil || c.resp == nil || c.resp.Body == nil || c.returned < 0 {
		synctest.Wait()
		e.checkAfter(c)
		return
	}
	inner := c.snapshotResponses()[c.returned].body
	c.mu.Lock()
	pw := c.pipeW
	c.mu.Unlock()
	chunks := [][]byte{
		[]byte(`data: {"choices":[{"delta":{"content":"Hel"}}]}` + "\n\n"),
		[]byte(`data: {"choices":[{"delta":{"content":"lo."}}]}` + "\n\n"),
	}
	streamed := true
	for i, chunk := range chunks {
		synctest.Wait()
		if inner.state().reading > 0 {
			e.rec.fail(RuleReturnedNotRead, "%s: before the caller read chunk %d, something else was already reading the returned body", c.name, i+1)
		}
		go func() { _, _ = pw.Write(chunk) }() // blocks until read; a stuck write ends when the call is released
		got, err, ok := readFullWithin(c.resp.Body, len(chunk), callPatience)
		switch {
		case !ok:
			e.rec.fail(RuleReturnedNotRead, "%s: chunk %d, written by the server, had not reached the caller after %v: the body is held back", c.name, i+1, callPatience)
		case err != nil || !bytes.Equal(got, chunk):
			e.rec.fail(RuleReturnedNotRead, "%s: chunk %d reached the caller as %q (%v), want %q", c.name, i+1, got, err, chunk)
		default:
			continue
		}
		streamed = false
		break
	}
	if streamed {
		_ = pw.Close()
		if rest, ok := readWithin(c.resp.Body, callPatience); !ok || len(rest) > 0 {
			e.rec.fail(RuleReturnedNotRead, "%s: after the last chunk, the caller read %d more bytes (or no end of body)", c.name, len(rest))
		}
	}
	_ = c.resp.Body.Close()
	c.releaseAll()
	synctest.Wait()
	if !inner.state().closed {
		e.rec.fail(RuleResponseIntact, "%s: closing the returned body left the inner transport's streamed body open", c.name)
	}
	e.checkAfter(c)
}

// groupUpgrade: a 101 Switching Protocols, as a WebSocket's handshake
// through an http.Client gets: its body is the upgraded connection, which
// the caller writes to. A middleware that wraps the body it returns in one
// that only reads takes the connection from the caller.
func groupUpgrade(e *groupEnv) {
	c := e.newCall("101 upgrade", callSpec{method: http.MethodGet, steps: []scriptStep{{upgrade: true}}})
	e.start(c, e.build())
	if !e.await(c, RuleResponseIntact, "it waited on the body of a 101") {
		return
	}
	if c.err == nil && c.resp != nil && c.resp.StatusCode == http.StatusSwitchingProtocols && c.resp.Body != nil {
		e.rec.exercise(RuleResponseIntact)
		conn := c.snapshotResponses()[0].conn
		w, ok := c.resp.Body.(io.Writer)
		switch {
		case !ok:
			e.rec.fail(RuleResponseIntact, "%s: the body returned (%T) does not write: the upgraded connection is lost", c.name, c.resp.Body)
		default:
			msg := []byte("ping")
			if n, err := w.Write(msg); err != nil || n != len(msg) || !bytes.Equal(conn.wrote(), msg) {
				e.rec.fail(RuleResponseIntact, "%s: what the caller wrote to the returned body (%d bytes, %v) did not reach the connection", c.name, n, err)
			}
		}
	}
	e.checkReturn(c)
	c.releaseAll()
	synctest.Wait()
	e.checkAfter(c)
}

// groupCancel: a context cancelled before the call, while the inner
// transport answers, and while the middleware waits to retry.
func groupCancel(e *groupEnv) {
	e.rec.exercise(RuleContextCanceled)

	c := e.newCall("context cancelled before the call", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{stepOK("cancel")}})
	c.cancel()
	e.start(c, e.build())
	if e.await(c, RuleContextCanceled, "its context was cancelled before the call") {
		if d := c.returnedAt.Sub(c.start); d > cancelSlack {
			e.rec.fail(RuleContextCanceled, "%s: RoundTrip took %v to return", c.name, d)
		}
		if c.err == nil || !errors.Is(c.err, context.Canceled) {
			e.rec.fail(RuleContextCanceled, "%s: RoundTrip returned %s, want an error matching context.Canceled", c.name, outcomeOf(c))
		}
		e.finishCall(c)
	}

	for _, s := range []struct {
		name  string
		steps []scriptStep
		// inWait: the middleware is waiting to retry when cancelled, so it
		// may hand back the answer it had instead of an error
		inWait bool
	}{
		{"context cancelled while the inner transport answers", []scriptStep{{hang: true}}, false},
		{"context cancelled while waiting to retry a 429 (Retry-After: 60)", []scriptStep{stepTooMany("60"), stepOK("cancel")}, true},
		// The retry's own attempt, not only the first, must end with the
		// caller's context.
		{"context cancelled while the inner transport answers a retry of a 503", []scriptStep{stepUnavailable([]byte(sampleOverloaded)), {hang: true}}, false},
	} {
		c := e.newCall(s.name, callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true, steps: s.steps})
		e.start(c, e.build())
		if hangs := s.steps[len(s.steps)-1].hang; hangs && len(s.steps) > 1 {
			e.awaitAttempt(c, len(s.steps))
		}
		synctest.Wait()
		select {
		case <-c.done: // it did not wait (no retry), so there is nothing to cancel
			e.finishCall(c)
			continue
		default:
		}
		cancelled := time.Now()
		c.cancel()
		if !e.await(c, RuleContextCanceled, "its context had been cancelled") {
			continue
		}
		if d := c.returnedAt.Sub(cancelled); d > cancelSlack {
			e.rec.fail(RuleContextCanceled, "%s: RoundTrip returned %v after its context was cancelled", c.name, d)
		}
		if c.resp == nil && !errors.Is(c.err, context.Canceled) {
			e.rec.fail(RuleContextCanceled, "%s: RoundTrip returned %s, want an error matching context.Canceled", c.name, outcomeOf(c))
		}
		if !s.inWait && c.resp != nil {
			e.rec.fail(RuleContextCanceled, "%s: RoundTrip returned %s though its only attempt failed with the context", c.name, outcomeOf(c))
		}
		e.finishCall(c)
	}
}

// groupDeadline: a server that asks for a wait far beyond the deadline, and
// one that never answers.
func groupDeadline(e *groupEnv) {
	e.rec.exercise(RuleContextDeadline)
	const timeout = 10 * time.Second
	withTimeout := func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, timeout)
	}

	c := e.newCallWith("429 with Retry-After: 3600 and a 10s deadline", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{stepTooMany("3600"), stepOK("deadline")}}, withTimeout)
	deadline, _ := c.ctx.Deadline()
	e.start(c, e.build())
	if e.await(c, RuleContextDeadline, "its deadline had passed long before") {
		// A retry after the 1h wait would have met the 200; without one,
		// the wait was refused, and refused at once, not slept on until
		// just before the deadline.
		retried := c.resp != nil && c.resp.StatusCode == http.StatusOK
		switch late := c.returnedAt.Sub(deadline); {
		case late > cancelSlack:
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %v after its deadline", c.name, late)
		case late >= 0:
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned at its deadline: it began a server-directed wait of 1h that could not end before the deadline %v away, instead of refusing it at once", c.name, timeout)
		case !retried && c.returnedAt.Sub(c.start) > cancelSlack:
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip gave up %v after the call began: it waited on a server-directed wait of 1h that could not end before the deadline %v away, instead of refusing it at once", c.name, c.returnedAt.Sub(c.start), timeout)
		}
		if c.resp == nil && c.err != nil && !errors.Is(c.err, context.DeadlineExceeded) {
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %s, want the 429 or an error matching context.DeadlineExceeded", c.name, outcomeOf(c))
		}
		e.finishCall(c)
	}

	for _, s := range []struct {
		name  string
		steps []scriptStep
	}{
		{"a server that never answers and a 10s deadline", []scriptStep{{hang: true}}},
		// The deadline holds for the retry's own attempt too.
		{"a 503, then a server that never answers, and a 10s deadline", []scriptStep{stepUnavailable([]byte(sampleOverloaded)), {hang: true}}},
	} {
		c := e.newCallWith(s.name, callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true, steps: s.steps}, withTimeout)
		deadline, _ := c.ctx.Deadline()
		e.start(c, e.build())
		if !e.await(c, RuleContextDeadline, "its deadline had passed long before") {
			continue
		}
		if late := c.returnedAt.Sub(deadline); late > cancelSlack {
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %v after its deadline", c.name, late)
		}
		if c.resp == nil && !errors.Is(c.err, context.DeadlineExceeded) {
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %s, want an error matching context.DeadlineExceeded", c.name, outcomeOf(c))
		}
		e.finishCall(c)
	}
}

// groupDeadlineCrowd: many calls in quick succession on one transport,
// each with a short deadline, each answered at once. A middleware that
// queues or paces them (a limiter) holds some back; a call whose wait
// cannot end before its deadline is refused at once, not held until the
// deadline passes. The calls come 10 ms apart, not at one instant: the
// crowd tests waits, and leaves sharing the transport at one instant to
// the concurrent group (and WithGoroutines).
func groupDeadlineCrowd(e *groupEnv) {
	e.rec.exercise(RuleContextDeadline)
	const (
		callers = 64
		timeout = time.Second
		apart   = 10 * time.Millisecond
	)
	rt := e.build()
	calls := make([]*callRun, callers)
	for i := range calls {
		calls[i] = e.newCallWith(fmt.Sprintf("crowd call %d of %d, 10 ms apart, with a 1s deadline", i+1, callers),
			callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true},
			func(ctx context.Context) (context.Context, context.CancelFunc) {
				return context.WithTimeout(ctx, timeout)
			})
		calls[i].steps = []scriptStep{stepOK(calls[i].id)} // an answer that names its call
	}
	for _, c := range calls {
		e.start(c, rt)
		time.Sleep(apart)
	}
	for _, c := range calls {
		deadline, _ := c.ctx.Deadline()
		if !e.await(c, RuleContextDeadline, "its deadline had passed long before") {
			continue
		}
		switch late := c.returnedAt.Sub(deadline); {
		case late > cancelSlack:
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %v after its deadline", c.name, late)
		case late >= 0 && c.attemptCount() == 0:
			// The inner transport answers at once: the wait was the
			// middleware's own.
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned at its deadline without sending the call: it began a wait that could not end before the deadline instead of refusing it at once", c.name)
		}
		if c.resp == nil && c.err != nil && !errors.Is(c.err, context.DeadlineExceeded) {
			e.rec.fail(RuleContextDeadline, "%s: RoundTrip returned %s, want a response or an error matching context.DeadlineExceeded", c.name, outcomeOf(c))
		}
		e.checkReturn(c)
	}
	// Every caller has read and closed its answer before any call's
	// responses are looked at, as in the concurrent group.
	synctest.Wait()
	for _, c := range calls {
		e.checkAfter(c)
	}
}

// groupPause: one transport, a 429 that asks for a day, then a call that
// the server would answer. A limiter may pause the key on the 429, but
// not for the day: the next call is sent within MaxPause.
func groupPause(e *groupEnv) {
	e.rec.exercise(RulePauseBounded)
	rt := e.build()
	day := strconv.Itoa(24 * 60 * 60)
	// Its deadline refuses the day's wait at once, so a middleware that
	// retries returns the 429 (or an error) without waiting.
	first := e.newCallWith("429 with Retry-After: 86400 and a 1m deadline", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{stepTooMany(day)}}, func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, time.Minute)
	})
	e.start(first, rt)
	if !e.await(first, RuleContextDeadline, "its deadline had passed long before") {
		return
	}
	e.finishCall(first)
	next := e.newCall("a call after a 429 that asked for a day", callSpec{method: http.MethodPost, body: []byte(sampleChat), getBody: true,
		steps: []scriptStep{stepOK("pause")}})
	e.start(next, rt)
	e.awaitAttempt(next, 1)
	next.mu.Lock()
	var sentAt time.Time
	if len(next.attempts) > 0 {
		sentAt = next.attempts[0].at
	}
	next.mu.Unlock()
	switch {
	case sentAt.IsZero():
		e.rec.fail(RulePauseBounded, "%s: not sent after %v: one answer stopped the transport for longer than %v", next.name, time.Since(next.start), MaxPause)
		next.cancel()
	case sentAt.Sub(next.start) > MaxPause:
		e.rec.fail(RulePauseBounded, "%s: sent %v after it began: one answer stopped the transport for longer than %v", next.name, sentAt.Sub(next.start), MaxPause)
	}
	if e.await(next, RulePauseBounded, "") {
		e.finishCall(next)
	}
}

// awaitAttempt waits, in virtual time, until attempt n of c has reached the
// inner transport or c has returned: a middleware may back off before it
// retries, and the scenario means to act during the retry itself.
func (e *groupEnv) awaitAttempt(c *callRun, n int) {
	step := time.Millisecond
	for waited := time.Duration(0); waited < callPatience; waited += step {
		synctest.Wait()
		if c.attemptCount() >= n {
			return
		}
		select {
		case <-c.done:
			return
		default:
		}
		time.Sleep(step)
		step = min(2*step, time.Second)
	}
}

// groupConcurrent: many goroutines share one wrapped transport; a third of
// their calls answered at once, a third after a 503, a third after a 429.
func groupConcurrent(e *groupEnv) {
	e.rec.exercise(RuleConcurrentUse)
	rt := e.build()
	const perCaller = 3
	var (
		mu    sync.Mutex
		calls []*callRun
		wg    sync.WaitGroup
	)
	for g := range e.cfg.goroutines {
		wg.Go(func() {
			for k := range perCaller {
				body := fmt.Appendf(nil, `{"model":%q,"messages":[{"role":"user","content":"caller %d, call %d"}]}`, ContractModel, g, k)
				c := e.newCall(fmt.Sprintf("caller %d, call %d", g, k), callSpec{method: http.MethodPost, body: body, getBody: k%2 == 0})
				c.crowded = true
				// Every answer names its call, so a caller handed another's
				// answer is seen.
				switch (g + k) % 3 {
				case 0:
					c.steps = []scriptStep{stepOK(c.id)}
				case 1:
					c.steps = []scriptStep{stepUnavailable(sampleError(c.id, "service_unavailable")), stepOK(c.id)}
				default:
					c.steps = []scriptStep{stepAnswer(http.StatusTooManyRequests, sampleError(c.id, "dynamic_request_limited"), "Retry-After", "0"), stepOK(c.id)}
				}
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
				c.start = time.Now()
				callRoundTrip(c, rt)
				close(c.done)
				e.checkReturn(c)
			}
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	t := time.NewTimer(callPatience)
	select {
	case <-all:
	case <-t.C:
		e.rec.fail(RuleConcurrentUse, "%d goroutines sharing one transport: calls had not returned after %v", e.cfg.goroutines, callPatience)
		mu.Lock()
		for _, c := range calls {
			c.cancel()
			c.releaseAll()
		}
		mu.Unlock()
		<-all // released calls end; one that never does is a deadlock synctest reports
	}
	t.Stop()
	synctest.Wait()
	for _, c := range calls {
		e.checkAfter(c)
		if c.resp != nil && c.err == nil && c.returnedData != nil && !bytes.Contains(c.returnedData, []byte(strconv.Quote(c.id))) {
			e.rec.fail(RuleConcurrentUse, "%s: the caller got a response made for another call", c.name)
		}
	}
}

// finishCall checks a call that has returned, as e.do does.
func (e *groupEnv) finishCall(c *callRun) {
	e.checkReturn(c)
	synctest.Wait()
	e.checkAfter(c)
}

// outcomeOf describes what RoundTrip returned, for messages.
func outcomeOf(c *callRun) string {
	switch {
	case c.panicked != nil:
		return fmt.Sprintf("a panic (%v)", c.panicked)
	case c.resp != nil && c.err != nil:
		return fmt.Sprintf("a response (%s) and the error %q", c.resp.Status, c.err)
	case c.resp != nil:
		return fmt.Sprintf("a response (%s)", c.resp.Status)
	case c.err != nil:
		return fmt.Sprintf("the error %q", c.err)
	}
	return "neither a response nor an error"
}
