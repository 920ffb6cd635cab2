package breaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/steadyapi/steady/transport"
)

// ErrOpen is matched (with [errors.Is]) by the error a request gets when its
// breaker is open, or half-open with its probes already out. The request was
// not sent. The error also matches [transport.ErrModelUnavailable], so that
// [transport.Fallback] moves to the next model, and gobreaker's
// ErrOpenState or ErrTooManyRequests.
var ErrOpen = errors.New("breaker: open")

// OpenError is the error of a request refused by an open breaker.
type OpenError struct {
	// Key is the breaker's key: by default the host and the model.
	Key string
	// Wait is how long the breaker stays open; 0 when it is half-open and
	// its probes are out.
	Wait time.Duration

	cause error // gobreaker.ErrOpenState or gobreaker.ErrTooManyRequests
}

// Error names the key and, when known, how long the breaker stays open.
func (e *OpenError) Error() string {
	switch {
	case e.cause == gobreaker.ErrTooManyRequests:
		return fmt.Sprintf("breaker: %q is half-open and its probes are out", e.Key)
	case e.Wait >= time.Second:
		return fmt.Sprintf("breaker: %q is open for %v more", e.Key, e.Wait.Round(time.Second))
	case e.Wait > 0:
		return fmt.Sprintf("breaker: %q is open for %v more", e.Key, e.Wait.Round(time.Millisecond))
	}
	return fmt.Sprintf("breaker: %q is open", e.Key)
}

// Is reports whether target is [ErrOpen] or [transport.ErrModelUnavailable].
func (e *OpenError) Is(target error) bool {
	return target == ErrOpen || target == transport.ErrModelUnavailable
}

// Unwrap returns gobreaker's error: ErrOpenState or ErrTooManyRequests.
func (e *OpenError) Unwrap() error { return e.cause }

// New returns a middleware that keeps one circuit breaker per key (by
// default per host and model) and fails fast, with an error matching
// [ErrOpen], while a key's breaker is open. See the [Option]s for when it
// opens and for how long. A nil next RoundTripper means
// [http.DefaultTransport].
//
// Each breaker is a gobreaker TwoStepCircuitBreaker, which decides every
// trip, probe and close; while it is closed it is told of a request when
// the request ends, and only when that can change what it decides (see
// report): a request to a healthy model costs one short lock and one read
// of the monotonic clock, not gobreaker's two of each. The middleware only
// counts: a failing answer (a 503) is returned to the caller as it is, and
// no response is read, drained or closed by it.
func New(opts ...Option) transport.Middleware {
	s := newSettings(opts)
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		n, _ := next.(transport.InfoRoundTripper)
		rt := &roundTripper{next: next, nextInfo: n, s: s, entries: make(map[string]*entry), epoch: time.Now()}
		rt.nextSweep.Store(int64(s.idleTTL / 2))
		return rt
	}
}

type roundTripper struct {
	next http.RoundTripper
	// nextInfo is next when it is a transport.InfoRoundTripper: each
	// request is handed to it directly, as transport.Forward would,
	// without Forward's look at its type on every request.
	nextInfo transport.InfoRoundTripper
	s        settings

	// epoch is the origin of every instant kept (as nanoseconds since it),
	// so that they are read on the monotonic clock: a wall-clock step does
	// not lengthen or cut short an open period.
	epoch time.Time

	// last is the entry of the key looked up last, found again without
	// the lock while its key comes again: most requests name the model
	// the one before named.
	last atomic.Pointer[entry]
	// nextSweep is when the next idle sweep is due (since epoch): the
	// first answer after it runs the sweep. Written under mu.
	nextSweep atomic.Int64

	mu       sync.Mutex
	entries  map[string]*entry
	overflow *entry // shared by new keys while every kept breaker is open
}

// entry is one key's breaker.
//
// gobreaker keeps one Timeout per breaker, but the open period here is the
// server's Retry-After when it sent one. So gobreaker's Timeout is set below
// the shortest open period (half of minOpen, or of the timeout or the cap
// on Retry-After when shorter), and openUntil, set when the
// breaker opens, holds every request back until the period chosen for this
// trip is over; only then is gobreaker asked, and it has turned half-open by
// then. gobreaker still runs the whole state machine: counts, trips, probes
// (while it is closed, with the successes it was not told of counted
// beside it: see report).
// (A request that passed the openUntil check just before another's failure
// opened the breaker reads the phase within far less than half a second:
// read after the trip, gobreaker refuses it as open; read before, it is
// sent, as one already in flight at the trip is, and its outcome, of a
// phase gone, is not counted.)
type entry struct {
	key string
	// host and model make the default key (the model as requests name
	// it, before transport.BoundKey): the last request's breaker is
	// compared by them. They are set for that key only; the overflow
	// breaker is never the last.
	host, model string
	cb          *gobreaker.TwoStepCircuitBreaker[struct{}]
	openUntil   atomic.Int64 // since epoch; requests fail fast before it; 0 once over
	gone        atomic.Bool  // dropped from the map: not to be found through last

	// phase counts gobreaker's changes of state, shifted left by one, with
	// closedBit set while it is closed. It is written by onStateChange,
	// under gobreaker's lock.
	phase atomic.Uint64
	// closedAt is when gobreaker last closed (since epoch): where the
	// buckets of its sampling window start.
	closedAt atomic.Int64

	// mu orders what the requests of a closed phase tell gobreaker (see
	// report); it guards the fields below, and is held while gobreaker
	// calls readyToTrip.
	mu      sync.Mutex
	clean   bool  // the last outcome told in this closed phase was a success (or none was)
	skipped tally // the successes of this closed phase gobreaker was not told of
	now     int64 // the clock as of the outcome being told, for readyToTrip
	// used is when the breaker was made or a request of its last ended
	// (since epoch): how long it has been idle, for the sweep.
	used int64

	// tripWait is the Retry-After of the last request judged (-1: none). It
	// is written by judge and read by changed, both called by gobreaker
	// under its lock, in that order, for the failure that opens the breaker.
	tripWait time.Duration

	// probes are the requests let through while the breaker was half-open
	// that have not ended, of this half-open phase or of earlier ones.
	// probeMu guards them, and is held while a probe's outcome is told to
	// gobreaker (whose lock is taken under it, never the other way round).
	probeMu sync.Mutex
	probes  []*probe
}

// probe is a request let through by a half-open breaker.
type probe struct {
	phase uint64      // the entry's phase as of Allow
	sent  int64       // when it was let through (since epoch)
	done  func(error) // gobreaker's, from Allow
	// givenUp is set once the probe, out for the probe wait, was told to
	// gobreaker as excluded, giving its place to another request.
	givenUp bool
}

// closedBit marks an entry's phase as closed.
const closedBit = 1

// failure is the outcome reported to gobreaker for a failed request: the
// server's Retry-After, or -1.
type failure time.Duration

func (failure) Error() string { return "breaker: failure" }

// errExcluded is the outcome of a request that says nothing of the model's
// health.
var errExcluded = errors.New("breaker: excluded")

func (rt *roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return rt.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected), which is handed on with it.
func (rt *roundTripper) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	var model string
	send := req
	if info != nil {
		model = info.Model
	} else {
		var err error
		if model, send, err = transport.RequestModel(req, rt.s.bodyLimit); err != nil {
			return nil, err
		}
	}
	e := rt.entry(send, model)
	if until := e.openUntil.Load(); until != 0 { // the clock is read only after a trip
		if now := rt.now(); now < until {
			closeBody(send)
			// A refusal is a use: a breaker that refuses its model's
			// requests for longer than IdleTTL is not idle, and dropped
			// as its open period ends it would let them all through.
			e.stamp(now)
			return nil, &OpenError{Key: e.key, Wait: time.Duration(until - now), cause: gobreaker.ErrOpenState}
		}
		e.openUntil.CompareAndSwap(until, 0) // unless a new trip set another
	}
	phase := e.phase.Load()
	if phase&closedBit != 0 {
		return rt.roundTripClosed(e, phase, req, send, info)
	}
	done, err := e.cb.Allow()
	if err == gobreaker.ErrTooManyRequests && e.giveUpProbes(rt.now(), rt.s.probeWait) {
		done, err = e.cb.Allow() // in the place of a probe given up on
	}
	if err != nil {
		closeBody(send)
		e.stamp(rt.now())
		return nil, &OpenError{Key: e.key, cause: err}
	}
	phase = e.phase.Load() // as of Allow, or later
	if phase&closedBit != 0 {
		// The breaker closed after the phase was read, and before Allow:
		// no probe is out when a breaker closes, so Allow counted this
		// request in the closed state, where the start of a request is
		// counted by nothing that decides.
		return rt.roundTripClosed(e, phase, req, send, info)
	}
	p := e.addProbe(phase, rt.now(), done)
	// A base transport (or a WithIsFailure) that panics still reports: as
	// a failure, before the panic goes on. Otherwise a half-open breaker
	// would wait for the outcome of its probes for the probe wait, refusing
	// every request. The answer the caller will not get is closed.
	reported := false
	var resp *http.Response
	defer func() {
		if !reported {
			closeResponse(resp)
			e.endProbe(p, failure(-1))
		}
	}()
	resp, err = rt.forward(send, info)
	out := rt.outcome(req, resp, err)
	reported = true
	e.endProbe(p, out)
	e.stamp(rt.now())
	return resp, err
}

// addProbe notes a request let through by the half-open breaker of e in
// phase, at now, whose outcome goes to done.
func (e *entry) addProbe(phase uint64, now int64, done func(error)) *probe {
	p := &probe{phase: phase, sent: now, done: done}
	e.probeMu.Lock()
	e.probes = append(e.probes, p)
	e.probeMu.Unlock()
	return p
}

// endProbe tells gobreaker the outcome of p as it ends, and forgets p.
//
// The outcome is told only while the breaker is in the state it was in at
// Allow: gobreaker would drop it otherwise, but only after looking at its
// clock, and a probe that ends more than half a second after another's
// failure reopened the breaker would turn it half-open there and then,
// while openUntil still holds every request back. A probe given up on was
// told as excluded already; its answer, come late, is told too (a failure
// reopens the breaker, a success counts towards closing it), but not a
// second exclusion.
func (e *entry) endProbe(p *probe, out error) {
	e.probeMu.Lock()
	defer e.probeMu.Unlock()
	if i := slices.Index(e.probes, p); i >= 0 {
		e.probes = slices.Delete(e.probes, i, i+1)
	}
	if p.givenUp && out == errExcluded {
		return
	}
	if e.phase.Load() == p.phase {
		p.done(out)
	}
}

// giveUpProbes tells gobreaker, as excluded, each probe of the current
// half-open phase that has been out for wait or longer at now, without an
// answer, and reports whether there was one: its place is free for
// another request. A probe that hangs (a base transport with no deadline,
// a server that never answers) then no longer holds its model's breaker
// half-open, refusing every request, for as long as it hangs. This runs
// only when gobreaker refuses a request as its probes are out, so no
// timer or goroutine waits for a probe.
func (e *entry) giveUpProbes(now int64, wait time.Duration) bool {
	e.probeMu.Lock()
	defer e.probeMu.Unlock()
	phase := e.phase.Load()
	freed := false
	for _, p := range e.probes {
		if p.givenUp || p.phase != phase || now-p.sent < int64(wait) {
			continue
		}
		p.givenUp = true
		p.done(errExcluded)
		freed = true
	}
	return freed
}

// roundTripClosed sends a request while its breaker is closed, and reports
// its outcome with report.
func (rt *roundTripper) roundTripClosed(e *entry, phase uint64, req, send *http.Request, info *transport.Info) (*http.Response, error) {
	reported := false
	var resp *http.Response
	defer func() {
		if !reported {
			closeResponse(resp)
			rt.report(e, phase, failure(-1), rt.now())
		}
	}()
	_, answers := info.AnsweredAt()
	resp, err := rt.forward(send, info)
	out := rt.outcome(req, resp, err)
	reported = true
	// The answer's time, as a limiter under the breaker read it, when one
	// did: the clock is read once per answer.
	var now int64
	if at, n := info.AnsweredAt(); n != answers {
		now = int64(at.Sub(rt.epoch))
	} else {
		now = rt.now()
	}
	rt.report(e, phase, out, now)
	rt.sweepDue(now)
	return resp, err
}

// report tells the breaker of e the outcome of a request sent while it was
// closed, in the phase given.
//
// A closed breaker decides nothing when a request starts, and at its end
// only a failure can trip it. So gobreaker is told of a request when it
// ends, and only when that can change a decision: a failure (which may
// trip it), and the first success after failures (which ends their run).
// A success while the last outcome told was a success changes nothing
// gobreaker counts but the successes in the failure ratio's window, and
// those are counted in e.skipped, which readyToTrip adds to gobreaker's
// counts. Every decision is gobreaker's as if it had been told every
// outcome as the request ended, without its two clock reads and two
// locks per request on the path almost every request takes.
//
// now is when the request ended (since rt.epoch).
func (rt *roundTripper) report(e *entry, phase uint64, out error, now int64) {
	if out == errExcluded { // an exclusion counts only while half-open
		e.stamp(now)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.used = max(e.used, now)
	if e.phase.Load() != phase { // the breaker changed state since the request started
		return
	}
	if e.skipped.gen != phase {
		e.skipped.reset(phase, e.closedAt.Load())
		e.clean = true // a new closed generation: no failure counted
	}
	if out == nil && e.clean {
		e.skipped.add(now)
		return
	}
	done, err := e.cb.Allow()
	if err != nil { // not closed after all: gobreaker drops the outcome, as of any earlier state
		return
	}
	e.clean = out == nil
	e.now = now
	done(out)
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (rt *roundTripper) CloseIdleConnections() { transport.CloseIdleConnections(rt.next) }

// forward sends req on to next with info, as transport.Forward does.
func (rt *roundTripper) forward(req *http.Request, info *transport.Info) (*http.Response, error) {
	if rt.nextInfo != nil {
		return rt.nextInfo.RoundTripInfo(req, info)
	}
	return transport.Forward(rt.next, req, info)
}

// now is the time since rt.epoch, in nanoseconds.
func (rt *roundTripper) now() int64 { return int64(time.Since(rt.epoch)) }

// closeResponse closes the body of an answer the caller will not get.
func closeResponse(resp *http.Response) {
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// outcome turns an answer into what gobreaker is told: nil for a success,
// a failure, or errExcluded.
func (rt *roundTripper) outcome(req *http.Request, resp *http.Response, err error) error {
	if req.Context().Err() != nil {
		return errExcluded
	}
	// An error that matches context.DeadlineExceeded while the caller's
	// context is alive is a timeout of the transport's own (net/http's
	// ResponseHeaderTimeout, a dial that timed out): the model did not
	// answer in time, a failure. Only a limiter's refusal of a wait the
	// deadline could not hold (transport.ErrDeadline) says nothing of it.
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, transport.ErrDeadline) ||
		errors.Is(err, transport.ErrNotSent) || errors.Is(err, transport.ErrModelUnavailable) || unsendable(req)) {
		return errExcluded
	}
	var failed bool
	if rt.s.isFailure != nil {
		failed = rt.s.isFailure(resp, err)
	} else if err != nil {
		failed = true
	} else if resp != nil {
		switch resp.StatusCode {
		case 500, 502, 503, 504, transport.StatusOverloaded:
			failed = true
		}
	}
	if !failed {
		return nil
	}
	if resp == nil {
		return failure(-1)
	}
	return failure(transport.ParseSignals(resp.Header, time.Now()).RetryAfter)
}

// entry returns the breaker of req's key, making it if needed. The last
// request's breaker, as nearly every request's is, is found without its
// key; the default key is otherwise built on the stack, so that looking it
// up allocates nothing.
func (rt *roundTripper) entry(req *http.Request, model string) *entry {
	var host string
	if req.URL != nil {
		host = req.URL.Host
	}
	if e := rt.last.Load(); e != nil && !e.gone.Load() && rt.s.key == nil && e.model == model && e.host == host {
		return e
	}
	return rt.entryKeyed(req, host, model)
}

// entryKeyed is entry once the last request's breaker was not req's: it
// finds req's by its key.
func (rt *roundTripper) entryKeyed(req *http.Request, host, model string) *entry {
	if rt.s.key != nil {
		key := transport.BoundKey(rt.s.key(req, model))
		if e := rt.last.Load(); e != nil && !e.gone.Load() && e.key == key {
			return e
		}
		return rt.entryLocked(req, transport.BoundKey(model), "", nil, key)
	}
	bound := transport.BoundKey(model)
	var buf [128]byte
	k := append(buf[:0], host...)
	k = append(k, ' ')
	k = append(k, bound...)
	return rt.entryLocked(req, bound, model, k, "")
}

// entryLocked is entry under rt.mu: the key is k when not nil (the
// default key, of req's host and model, whose model as the request named
// it is raw), else key. model is bounded ([transport.BoundKey]), as it is
// kept for the breaker's events.
//
// An entry found through rt.last an instant before a sweep or an eviction
// drops it (idle for IdleTTL, or the least recently used of MaxKeys) takes
// the request it was found for, and is then forgotten: one request counted
// by a breaker that had none for the idle period, or was the least used.
func (rt *roundTripper) entryLocked(req *http.Request, model, raw string, k []byte, key string) *entry {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	var e *entry
	if k != nil {
		e = rt.entries[string(k)]
	} else {
		e = rt.entries[key]
	}
	if e == nil {
		if k != nil {
			key = string(k)
		}
		n := rt.now()
		if len(rt.entries) >= rt.s.maxKeys {
			rt.sweep(n)
			if len(rt.entries) >= rt.s.maxKeys && !rt.evictOldest() {
				// Every breaker kept is open or probing: none gives way,
				// and the new key shares the overflow breaker.
				if rt.overflow == nil {
					rt.overflow = rt.newEntry(overflowKey, req, "")
				}
				return rt.overflow
			}
		}
		e = rt.newEntry(key, req, model)
		e.used = n // not shared yet
		if k != nil {
			// A raw name longer than the bound is not kept: the client
			// names the model, and a breaker per huge name would hold
			// each. Its requests find the breaker by its key instead.
			e.model = raw
			if len(raw) > transport.MaxKeyLen {
				e.model = model
			}
			if req.URL != nil {
				e.host = req.URL.Host
			}
		}
		rt.entries[key] = e
	}
	rt.last.Store(e)
	return e
}

// sweepDue runs the idle sweep at now, the time of an answer, when it is
// due. The happy path reads one word for it: the clock it is given was
// read for the answer already, and the requests themselves count nothing.
func (rt *roundTripper) sweepDue(now int64) {
	if now < rt.nextSweep.Load() {
		return
	}
	rt.mu.Lock()
	if now >= rt.nextSweep.Load() {
		rt.sweep(now)
	}
	rt.mu.Unlock()
}

// sweep drops the breakers idle for IdleTTL: no request of theirs ended
// for that long since they were made (an exclusion's end counts too, and a
// refusal's while the breaker is open or its probes are out). It runs at
// the first answer once one is due (at most once per half IdleTTL, so a
// breaker is dropped when it has been idle
// for between IdleTTL and 1.5 IdleTTL while other traffic flows) and when
// the map is full, so its cost is spread thin over the requests. An open
// breaker is kept. A request of a key whose requests had all ended IdleTTL
// before may be in flight when its breaker is dropped: its outcome is told
// to the breaker dropped, as one found through rt.last an instant before
// (see entryLocked). Callers hold rt.mu.
func (rt *roundTripper) sweep(now int64) {
	ttl := int64(rt.s.idleTTL)
	for k, e := range rt.entries {
		if used, ok := e.usedAt(); ok && now-used >= ttl && e.openUntil.Load() <= now {
			delete(rt.entries, k)
			e.gone.Store(true)
		}
	}
	rt.nextSweep.Store(now + ttl/2)
}

// usedAt is when e was made or a request of its last ended. ok is false while an
// outcome is being told, under e.mu: e is in use at this instant. The
// sweep, which holds rt.mu, does not wait for e.mu, which is held while
// gobreaker decides and calls the events hook.
func (e *entry) usedAt() (used int64, ok bool) {
	if !e.mu.TryLock() {
		return 0, false
	}
	used = e.used
	e.mu.Unlock()
	return used, true
}

// stamp notes an outcome at now (since epoch) for the sweep, where report
// takes no lock of its own: an exclusion's, or a probe's, told while the
// breaker was not closed.
func (e *entry) stamp(now int64) {
	e.mu.Lock()
	e.used = max(e.used, now)
	e.mu.Unlock()
}

// evictOldest drops the least recently used closed breaker, when MaxKeys
// are in use and none is idle, and reports whether it found one. An open
// or half-open breaker is never dropped for a new key: its model would get
// traffic again. Callers hold rt.mu.
func (rt *roundTripper) evictOldest() bool {
	var oldest *entry
	var oldestUsed int64
	for _, e := range rt.entries {
		if e.openUntil.Load() != 0 || e.cb.State() != StateClosed {
			continue
		}
		if used, ok := e.usedAt(); ok && (oldest == nil || used < oldestUsed) {
			oldest, oldestUsed = e, used
		}
	}
	if oldest == nil {
		return false
	}
	delete(rt.entries, oldest.key)
	oldest.gone.Store(true)
	return true
}

// overflowKey names the breaker the keys past MaxKeys share while every
// kept breaker is open.
const overflowKey = "(overflow: every kept breaker is open)"

func (rt *roundTripper) newEntry(key string, req *http.Request, model string) *entry {
	e := &entry{key: key, tripWait: -1}
	var endpoint string
	if rt.s.events != nil {
		endpoint = transport.Endpoint(req)
	}
	period, buckets := rt.s.buckets()
	e.skipped.period, e.skipped.n = int64(period), buckets
	e.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         key,
		MaxRequests:  rt.s.halfOpenProbes,
		Interval:     rt.s.samplingWindow,
		BucketPeriod: period,
		Timeout:      max(min(minOpen, rt.s.timeout, rt.s.maxRetryAfter)/2, 1), // 0 is gobreaker's default of a minute
		ReadyToTrip:  e.readyToTrip(&rt.s),
		IsExcluded:   func(err error) bool { return err == errExcluded },
		IsSuccessful: e.judge,
		OnStateChange: func(_ string, from, to State) {
			next := (e.phase.Load()>>1 + 1) << 1
			if to == StateClosed {
				e.closedAt.Store(rt.now())
				next |= closedBit
			}
			if to == StateOpen {
				e.openUntil.Store(rt.now() + int64(rt.openFor(e.tripWait)))
			}
			e.phase.Store(next)
			if rt.s.events != nil {
				rt.s.events.Emit(transport.Event{Kind: transport.EventBreaker, Key: e.key, Endpoint: endpoint, Model: model,
					From: from.String(), To: to.String()})
			}
		},
	})
	// gobreaker starts closed, its window starting now.
	e.closedAt.Store(rt.now())
	e.phase.Store(closedBit)
	return e
}

// readyToTrip is gobreaker's ReadyToTrip for e: the settings' rule, over
// gobreaker's counts and the successes it was not told of. gobreaker calls
// it for a failure told by report, under e.mu.
func (e *entry) readyToTrip(s *settings) func(gobreaker.Counts) bool {
	return func(c gobreaker.Counts) bool {
		c.TotalSuccesses += e.skipped.sum(e.now)
		return s.readyToTrip(c)
	}
}

// judge is gobreaker's IsSuccessful; it also notes the Retry-After of a
// failure, in case this failure opens the breaker.
func (e *entry) judge(err error) bool {
	if f, ok := err.(failure); ok {
		e.tripWait = time.Duration(f)
		return false
	}
	e.tripWait = -1
	return err == nil
}

// openFor is the open period of a trip whose failure carried Retry-After
// wait (-1: none).
func (rt *roundTripper) openFor(wait time.Duration) time.Duration {
	if wait < 0 {
		return rt.s.timeout
	}
	return min(max(wait, min(minOpen, rt.s.timeout)), rt.s.maxRetryAfter)
}

// unsendable reports whether net/http's Transport refuses req before it
// sends a byte, for a fault of the request's own: a header or trailer
// field that is not valid HTTP (a value with a line break, as one copied
// from a user's input may have; a name with a space) or a method that is
// not a token. Its error says nothing of the model, and counted as a
// failure, a few such requests from one caller would open the model's
// breaker for every caller. It is checked only after an error.
func unsendable(req *http.Request) bool {
	if req.Method != "" && !isToken(req.Method) {
		return true
	}
	return !validFields(req.Header) || !validFields(req.Trailer)
}

// validFields reports whether every name of h is a token and every value
// free of control bytes but the tab, as net/http requires of a request's
// header and trailer.
func validFields(h http.Header) bool {
	for k, vv := range h {
		if !isToken(k) {
			return false
		}
		for _, v := range vv {
			for i := 0; i < len(v); i++ {
				if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
	}
	return true
}

// isToken reports whether s is an HTTP token (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
