package conformance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/steadyapi/steady/transport"
)

const (
	// callPatience is how long, in virtual time, the suite waits for a call
	// that should return. Virtual time is free, so it is generous: any
	// backoff or limiter wait a sane middleware makes fits in it.
	callPatience = time.Hour

	// cancelSlack is how soon after its context is cancelled a call must have
	// returned, in virtual time: a middleware that stops at once takes
	// none.
	cancelSlack = 10 * time.Millisecond

	// leakGrace is how long goroutines may linger once a group's calls are
	// over, their responses closed and their contexts done.
	leakGrace = time.Second
)

// groupEnv is one group of scenarios running in its bubble.
type groupEnv struct {
	rec   *ruleRecorder
	mw    transport.Middleware
	cfg   *suiteConfig
	inner *scriptedTransport

	mu    sync.Mutex
	calls []*callRun
	next  int
}

// runGroup runs one group of scenarios in a synctest bubble and then looks
// for the goroutines it left behind.
func runGroup(t *testing.T, rec *ruleRecorder, mw transport.Middleware, cfg *suiteConfig, run func(*groupEnv)) {
	defer func() {
		// synctest panics when goroutines of the bubble are still blocked
		// after the group: they are leaked for good.
		if p := recover(); p != nil {
			rec.fail(RuleNoGoroutineLeak, "goroutines of the middleware are blocked forever: %v", p)
		}
	}()
	synctest.Test(t, func(t *testing.T) {
		e := &groupEnv{rec: rec, mw: mw, cfg: cfg, inner: &scriptedTransport{rec: rec, calls: map[string]*callRun{}}}
		func() {
			defer func() {
				if p := recover(); p != nil {
					rec.fail(RuleResponseOrError, "the middleware panicked: %v", p)
				}
			}()
			run(e)
		}()
		e.finish()
	})
}

// build wraps the inner transport in the middleware.
func (e *groupEnv) build() http.RoundTripper {
	rt := e.mw(e.inner)
	if rt == nil {
		e.rec.fail(RuleResponseOrError, "the middleware returned a nil RoundTripper")
	}
	return rt
}

// newCall makes a call whose context is a child of context.Background.
func (e *groupEnv) newCall(name string, spec callSpec) *callRun {
	return e.newCallWith(name, spec, func(ctx context.Context) (context.Context, context.CancelFunc) {
		return context.WithCancel(ctx)
	})
}

func (e *groupEnv) newCallWith(name string, spec callSpec, derive func(context.Context) (context.Context, context.CancelFunc)) *callRun {
	e.mu.Lock()
	e.next++
	id := fmt.Sprintf("call-%d", e.next)
	e.mu.Unlock()
	c := newCall(name, id, spec, derive)
	e.inner.add(c)
	e.mu.Lock()
	e.calls = append(e.calls, c)
	e.mu.Unlock()
	return c
}

// start calls RoundTrip in its own goroutine, so the scenario can watch the
// clock, cancel, or stream while the call runs.
func (e *groupEnv) start(c *callRun, rt http.RoundTripper) {
	c.start = time.Now()
	go func() {
		defer close(c.done)
		callRoundTrip(c, rt)
	}()
}

// callRoundTrip calls rt and records the outcome in c.
func callRoundTrip(c *callRun, rt http.RoundTripper) {
	returned := false
	defer func() {
		if p := recover(); p != nil {
			c.panicked, c.returnedAt = p, time.Now()
		} else if !returned {
			c.panicked, c.returnedAt = "its goroutine was ended while it retried without end", time.Now()
		}
	}()
	if rt == nil {
		c.panicked, c.returnedAt = "nil RoundTripper", time.Now()
		return
	}
	resp, err := rt.RoundTrip(c.req)
	returned = true
	c.returnedAt = time.Now()
	c.resp, c.err = resp, err
	for _, r := range c.snapshotResponses() {
		c.readAtReturn = append(c.readAtReturn, r.body.state().read)
	}
}

// wait waits up to d for c to return.
func (c *callRun) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

// do runs one call to its end and checks every per-call rule. It reports
// false when the call never returned; hung names the rule that breaks.
func (e *groupEnv) do(c *callRun, hung Rule) bool {
	e.start(c, e.build())
	if !e.await(c, hung, "") {
		return false
	}
	e.checkReturn(c)
	synctest.Wait()
	e.checkAfter(c)
	return true
}

// await waits for c; if it does not return within callPatience, it records a
// failure of rule, then cancels and releases the call and waits again.
func (e *groupEnv) await(c *callRun, rule Rule, why string) bool {
	if c.wait(callPatience) {
		return true
	}
	if why == "" {
		why = "it returned neither a response nor an error"
	}
	e.rec.fail(rule, "%s: RoundTrip had not returned after %v (virtual time; %d attempts reached the inner transport): %s", c.name, callPatience, c.attemptCount(), why)
	c.cancel()
	c.releaseAll()
	if c.wait(callPatience) {
		e.checkReturn(c)
		return false
	}
	e.rec.fail(rule, "%s: RoundTrip never returned, even after its context was cancelled and the inner transport released", c.name)
	return false
}

// checkReturn checks what RoundTrip returned, then reads and closes the
// response as a caller would (unless the scenario streams it).
func (e *groupEnv) checkReturn(c *callRun) {
	if c.panicked != nil {
		e.rec.fail(RuleResponseOrError, "%s: RoundTrip did not return: %v", c.name, c.panicked)
		return
	}
	resp, err := c.resp, c.err
	e.rec.exercise(RuleResponseOrError)
	responses := c.snapshotResponses()
	c.returned = -1
	if resp != nil {
		for i, r := range responses {
			if r.resp == resp || sameValue(resp.Body, io.ReadCloser(r.body)) {
				c.returned = i
			}
		}
	}
	switch {
	case resp != nil && err != nil:
		e.rec.fail(RuleResponseOrError, "%s: RoundTrip returned both a response (%s) and an error (%v)", c.name, resp.Status, err)
		if resp.Body != nil { // read it as a caller would, so it shows as nothing else
			_, _ = readWithin(resp.Body, callPatience)
			_ = resp.Body.Close()
		}
		return
	case resp == nil && err == nil:
		e.rec.fail(RuleResponseOrError, "%s: RoundTrip returned neither a response nor an error", c.name)
		return
	case resp != nil && resp.Body == nil:
		e.rec.fail(RuleResponseOrError, "%s: RoundTrip returned a response (%s) without a Body", c.name, resp.Status)
		return
	}
	if err != nil {
		e.checkAnswerKept(c)
		e.rec.exercise(RuleSecretHidden)
		if strings.Contains(err.Error(), contractSecret) {
			e.rec.fail(RuleSecretHidden, "%s: the error returned holds the Authorization header's key", c.name)
		}
		return
	}
	e.rec.exercise(RuleReturnedNotRead)
	e.rec.exercise(RuleResponseIntact)
	if c.stream {
		if c.returned < 0 && len(responses) == 1 && resp.StatusCode == http.StatusOK {
			// A new response around the stream: the chunks the caller
			// then reads show whose body it carries.
			c.returned = 0
		}
		if c.returned < 0 {
			e.rec.fail(RuleResponseIntact, "%s: the response returned (%s) is not the streamed response of the inner transport", c.name, resp.Status)
			return
		}
		e.checkHeader(c, resp, responses[c.returned].header)
		e.checkNotRead(c)
		e.checkLatestAnswer(c, len(responses))
		return
	}
	data, ok := readWithin(resp.Body, callPatience)
	_ = resp.Body.Close()
	if !ok {
		e.rec.fail(RuleResponseIntact, "%s: reading the returned body blocked for %v though the inner transport's body was all there", c.name, callPatience)
		return
	}
	c.returnedData = data
	if c.returned >= 0 {
		if want := responses[c.returned].data; !bytes.Equal(data, want) {
			e.rec.fail(RuleResponseIntact, "%s: the returned body reads %d bytes that differ from the %d the inner transport answered", c.name, len(data), len(want))
		}
		if got, want := resp.StatusCode, responses[c.returned].resp.StatusCode; got != want {
			e.rec.fail(RuleResponseIntact, "%s: the returned response's status was changed from %d to %d", c.name, want, got)
		}
	} else {
		// Not the inner's object: it must at least carry the status and
		// the bytes of one of the inner's answers, the latest that does.
		for i := len(responses) - 1; i >= 0; i-- {
			if r := responses[i]; r.resp.StatusCode == resp.StatusCode && bytes.Equal(r.data, data) {
				c.returned = i
				break
			}
		}
		if c.returned < 0 {
			e.rec.fail(RuleResponseIntact, "%s: the response returned (%s, %d bytes) is none the inner transport answered", c.name, resp.Status, len(data))
			return
		}
	}
	e.checkHeader(c, resp, responses[c.returned].header)
	e.checkNotRead(c)
	e.checkLatestAnswer(c, len(responses))
}

// checkLatestAnswer checks that a call whose last attempt the inner
// transport answered returns that answer, not an earlier one: the later
// answer (a 200 the server generated and billed) would be lost.
func (e *groupEnv) checkLatestAnswer(c *callRun, responses int) {
	c.mu.Lock()
	attempts := len(c.attempts)
	answered := attempts > 0 && c.attempts[attempts-1].answered
	c.mu.Unlock()
	if !answered || c.returned < 0 {
		return
	}
	e.rec.exercise(RuleAnswerKept)
	if c.returned != responses-1 {
		e.rec.fail(RuleAnswerKept, "%s: RoundTrip returned answer %d of %d though the inner transport answered the last attempt: the later answer is lost", c.name, c.returned+1, responses)
	}
}

// checkHeader checks that the response returned carries every header field
// of the inner transport's answer, unchanged: the caller reads them
// (Retry-After, the rate headers, a request id), and an SDK retries by
// them. A middleware may add fields.
func (e *groupEnv) checkHeader(c *callRun, resp *http.Response, inner http.Header) {
	var lost []string
	for k, v := range inner {
		if !slices.Equal(resp.Header[k], v) {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		e.rec.fail(RuleResponseIntact, "%s: the response returned lost or changed the header fields %v of the inner transport's answer", c.name, lost)
	}
}

// checkAnswerKept checks that an error RoundTrip returned does not stand
// in for an answer: with the caller's context live, the inner transport's
// last attempt answered with a response is what the caller gets, whether
// the middleware liked it or gave up on it. A deadline's error stays
// allowed: a wait the deadline cannot fit is refused with one.
func (e *groupEnv) checkAnswerKept(c *callRun) {
	c.mu.Lock()
	attempts := len(c.attempts)
	answered := attempts > 0 && c.attempts[attempts-1].answered
	c.mu.Unlock()
	if attempts > 0 {
		e.rec.exercise(RuleAnswerKept)
	}
	if !answered || c.ctx.Err() != nil {
		return
	}
	if _, ok := c.ctx.Deadline(); ok && errors.Is(c.err, context.DeadlineExceeded) {
		return
	}
	if c.crowded && errors.Is(c.err, transport.ErrModelUnavailable) {
		// A retry refused by a breaker, which the failures of calls
		// sent at the same time opened while it waited: the model was
		// judged down, and a fallback acts on that error. (A call sent
		// alone has no such excuse.)
		return
	}
	e.rec.fail(RuleAnswerKept, "%s: RoundTrip returned an error though its context was live and the inner transport answered attempt %d of %d with a response: the answer is lost", c.name, attempts, attempts)
}

// checkNotRead checks that RoundTrip had not read the body it returned.
func (e *groupEnv) checkNotRead(c *callRun) {
	if i := c.returned; i >= 0 && i < len(c.readAtReturn) && c.readAtReturn[i] > 0 {
		e.rec.fail(RuleReturnedNotRead, "%s: RoundTrip had read %d bytes of the body it returned before returning it", c.name, c.readAtReturn[i])
	}
}

// checkAfter checks, once the call's goroutines have settled, what became
// of the request and of every response the inner transport made.
func (e *groupEnv) checkAfter(c *callRun) {
	for _, change := range c.snap.diff(c.req) {
		e.rec.fail(RuleRequestUnmodified, "%s: after RoundTrip returned, the caller's request had %s", c.name, change)
	}
	e.rec.exercise(RuleRequestUnmodified)
	if c.callerBody != nil {
		e.rec.exercise(RuleRequestBodyClosed)
		if !c.callerBody.state().closed {
			e.rec.fail(RuleRequestBodyClosed, "%s: the caller's request body was never closed", c.name)
		}
	}
	c.mu.Lock()
	got := append([]*watchedReader(nil), c.gotBodies...)
	attempts := append([]attemptSeen(nil), c.attempts...)
	c.mu.Unlock()
	for i, b := range got {
		if !b.state().closed {
			e.rec.fail(RuleRequestBodyClosed, "%s: body %d of %d taken from GetBody was never closed", c.name, i+1, len(got))
		}
	}
	e.checkReplay(c, attempts)
	e.checkRetryAfter(c, attempts)
	responses := c.snapshotResponses()
	for i, r := range responses {
		st := r.body.state()
		if i == c.returned {
			if !c.stream && !st.closed {
				e.rec.fail(RuleResponseIntact, "%s: closing the returned body left the inner transport's body open", c.name)
			}
			continue
		}
		e.rec.exercise(RuleDiscardedDrained)
		switch {
		case !st.closed:
			e.rec.fail(RuleDiscardedDrained, "%s: response %d of %d (%d), not returned, was never closed", c.name, i+1, len(responses), r.resp.StatusCode)
		case !st.eof && st.read < int64(len(r.data)) && st.read < transport.DrainLimit:
			e.rec.fail(RuleDiscardedDrained, "%s: response %d of %d (%d), not returned, was closed after reading %d of its %d bytes: not drained", c.name, i+1, len(responses), r.resp.StatusCode, st.read, len(r.data))
		}
	}
}

// checkReplay checks that every attempt carried the caller's bytes.
func (e *groupEnv) checkReplay(c *callRun, attempts []attemptSeen) {
	sent := 0
	for i, a := range attempts {
		if !a.sent {
			continue
		}
		sent++
		if !bytes.Equal(a.body, c.sent) {
			e.rec.fail(RuleBodyReplayed, "%s: attempt %d of %d carried %d bytes that differ from the %d the caller sent", c.name, i+1, len(attempts), len(a.body), len(c.sent))
		}
		if a.contentLength > 0 && a.contentLength != int64(len(a.body)) {
			e.rec.fail(RuleBodyReplayed, "%s: attempt %d of %d said ContentLength %d for a body of %d bytes", c.name, i+1, len(attempts), a.contentLength, len(a.body))
		}
	}
	if sent > 1 && c.sent != nil {
		e.rec.exercise(RuleBodyReplayed)
	}
}

// checkRetryAfter checks that no attempt followed an answer carrying
// Retry-After before the wait it asked for had passed, or retryAfterCap
// when it asked for longer. The inner transport answers at once, so the
// wait counts from the attempt answered. A 429's wait holds for every
// next attempt (the key's limit); another status's, such as an overloaded
// model's 503, only for the same request sent again: a middleware may send
// the next attempt to another model at once (its body then differs).
func (e *groupEnv) checkRetryAfter(c *callRun, attempts []attemptSeen) {
	if len(c.steps) == 0 {
		return
	}
	for i, a := range attempts {
		st := c.steps[min(i, len(c.steps)-1)]
		if st.status == 0 || st.err != nil || st.hang {
			continue
		}
		secs, err := strconv.Atoi(st.header.Get("Retry-After"))
		if err != nil || secs <= 0 {
			continue
		}
		e.rec.exercise(RuleRetryAfter)
		if i+1 >= len(attempts) {
			continue
		}
		if st.status != http.StatusTooManyRequests && !bytes.Equal(attempts[i+1].body, a.body) {
			continue
		}
		want := min(time.Duration(secs)*time.Second, retryAfterCap)
		if got := attempts[i+1].at.Sub(a.at); got < want {
			e.rec.fail(RuleRetryAfter, "%s: attempt %d was sent %v after attempt %d was answered %d with Retry-After: %d", c.name, i+2, got, i+1, st.status, secs)
		}
	}
}

// retryAfterCap is the least cap on a server's wait the suite accepts. A
// middleware may cap what a server asks for, so that one garbage
// Retry-After does not stall a key (DESIGN.md's MaxPause), but a cap
// below half a minute is a server-directed wait shortened.
const retryAfterCap = 30 * time.Second

// finish ends every call of the group, then looks for the goroutines left
// in the bubble.
func (e *groupEnv) finish() {
	e.mu.Lock()
	calls := append([]*callRun(nil), e.calls...)
	e.mu.Unlock()
	for _, c := range calls {
		c.cancel()
		c.releaseAll()
	}
	synctest.Wait()
	e.rec.exercise(RuleNoGoroutineLeak)
	stray := bubbleGoroutines()
	if len(stray) == 0 {
		return
	}
	time.Sleep(leakGrace)
	synctest.Wait()
	if stray = bubbleGoroutines(); len(stray) == 0 {
		return
	}
	e.rec.fail(RuleNoGoroutineLeak, "%d goroutines still ran %v after every call had returned, its response was closed and its context was done; the first:\n%s",
		len(stray), leakGrace, strings.Join(stray[:min(len(stray), 3)], "\n\n"))
	// Let goroutines that wait on timers end, so the bubble can close;
	// those still blocked after a virtual day are blocked for good, and
	// synctest's panic is recovered by runGroup.
	for i := 0; i < 24*60 && len(bubbleGoroutines()) > 0; i++ {
		time.Sleep(time.Minute)
	}
}

// readWithin reads r to its end, giving up after d. A read still blocked
// then is left to end when the scenario releases its bodies.
func readWithin(r io.Reader, d time.Duration) ([]byte, bool) {
	type result struct{ data []byte }
	ch := make(chan result, 1)
	go func() {
		data, _ := io.ReadAll(r)
		ch <- result{data}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.data, true
	case <-t.C:
		return nil, false
	}
}

// readFullWithin reads exactly n bytes of r, giving up after d.
func readFullWithin(r io.Reader, n int, d time.Duration) ([]byte, error, bool) {
	type result struct {
		data []byte
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		buf := make([]byte, n)
		m, err := io.ReadFull(r, buf)
		ch <- result{buf[:m], err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case res := <-ch:
		return res.data, res.err, true
	case <-t.C:
		return nil, nil, false
	}
}

var bubbleHeader = regexp.MustCompile(`^goroutine (\d+) \[[^\]]*synctest bubble (\d+)`)

// bubbleGoroutines returns the stacks of the goroutines of the caller's
// bubble, except the caller and the ones testing/synctest itself runs.
func bubbleGoroutines() []string {
	self := bubbleHeader.FindStringSubmatch(string(goroutineStacks(false)))
	if self == nil {
		return nil
	}
	var stray []string
	for _, g := range strings.Split(string(goroutineStacks(true)), "\n\n") {
		m := bubbleHeader.FindStringSubmatch(g)
		if m == nil || m[2] != self[2] || m[1] == self[1] {
			continue
		}
		if strings.Contains(g, "\ninternal/synctest.Run(") || strings.Contains(g, "\ntesting/synctest.testingSynctestTest(") {
			continue
		}
		stray = append(stray, g)
	}
	return stray
}

func goroutineStacks(all bool) []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, all)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
