package bucket

import (
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/steadyapi/steady/transport"
)

// The rate controller's constants, chosen against the scenarios in
// goals_test.go: a server enforcing its limit per second, a key with a
// tenth of the limit the client was told, Together's dynamic limit, and a
// server counting in one-minute windows.
const (
	// beta is where a 429 puts the rate, relative to the limit measured.
	// Close to 1 because the measure is good: 0.9 leaves the server's
	// bucket room to refill, so the next 429 comes a probe later, not at
	// once, and the capacity used stays above 90%.
	beta = 0.9
	// blindDecrease lowers the rate when a 429 comes before anything could
	// be measured: gentler than halving, since the next 429 brings a
	// measure anyway.
	blindDecrease = 0.7
	// probe is the time the cubic takes to come back to the measured
	// limit; it sets how often a server at a steady limit is probed (a
	// 429 every one and a half to two probes), so how many of its answers
	// are 429s.
	probe = 60 * time.Second
	// minMeasure is the shortest span, since the start, whose accepted
	// requests measure a limit: shorter, and the server's initial burst
	// would pass for rate.
	minMeasure = 10 * time.Second
	// measureWindow is how far back a 429 looks to measure the limit.
	measureWindow = 30 * time.Second
	// slot is the resolution of that measure.
	slot = 500 * time.Millisecond
	// maxSlack bounds how early a server's resets are taken to be: the
	// rounding of a reset to the millisecond, not a wait of its own.
	maxSlack = 5 * time.Millisecond
	// slowStartDoubling is how often slow start doubles the rate.
	slowStartDoubling = time.Second
	// maxRate bounds a rate with no ceiling, so doubling stays finite.
	maxRate = 1e9
)

type mode int8

const (
	steady    mode = iota // the configured rate, until a 429
	slowStart             // unknown rate: doubling until a 429
	probing               // after a 429: the cubic
)

// control is what Limit learns about the server, shared by every
// RoundTripper of one Limit.
type control struct {
	b       *Bucket
	cfg     limitConfig
	ceiling float64 // tokens a second
	floor   float64

	mu    sync.Mutex
	mode  mode
	start time.Time // the first request, which anchors slow start
	rate  float64   // the rate last set on the bucket
	rate0 float64   // the rate slow start starts from

	// The current pause: requests sent before its end that come back 429
	// belong to it.
	paused      bool
	pauseEnd    time.Time
	resumed     time.Time // the first request sent after the pause, if seen
	resumedSeen bool
	// What the server accepted, by the time each request was sent: the
	// measure of its limit. The meter covers the measure window; the
	// count, exactly the requests sent since the pause ended (since the
	// start before any pause).
	accepted   meter
	sincePause float64
	// The limit measured at the last 429: the cubic's plateau.
	plateau float64

	// The best of the server's counts of what remains: the most it allows
	// to be granted in all (the bucket's count of tokens granted) before
	// bestUntil. Every count gives a bound that holds whatever order the
	// requests in flight reached the server in; the best is exact once the
	// answers of a burst are all in.
	best      float64
	bestUntil time.Time
	// period is the longest reset seen: the length of the server's window,
	// or the time its bucket takes to fill.
	period time.Duration
	// slack is added to the server's resets: how early they proved to be.
	slack time.Duration

	// kind tells windows (> 0) from buckets (< 0), from the end of the
	// window each count names: a window's reset counts down to the same
	// moment on every answer, a bucket's moves with every request. Until
	// told, counts are read as windows, which is safe for both.
	kind               int
	kindSent, kindEnds time.Time
}

func newControl(b *Bucket, cfg limitConfig) *control {
	c := &control{b: b, cfg: cfg, rate: b.Rate().PerSecond()}
	c.rate0 = c.rate
	c.ceiling = cfg.ceiling.PerSecond()
	if !cfg.ceiling.Known() {
		c.ceiling = c.rate
		if b.unknown {
			c.ceiling = maxRate
		}
	}
	c.floor = min(cfg.floor.PerSecond(), c.ceiling)
	if !cfg.floor.Known() {
		c.floor = min(1.0/60, c.ceiling)
	}
	if b.unknown {
		c.mode = slowStart
	}
	return c
}

// observe learns from the answer to req, a request of n tokens sent at
// sent, granted with tk.
func (c *control) observe(req *http.Request, resp *http.Response, sent time.Time, tk ticket, n float64) {
	now := time.Now()
	sig := transport.ParseSignals(resp.Header, now)
	if resp.StatusCode == http.StatusTooManyRequests {
		c.refused(req, &sig, now, sent)
		return
	}

	c.mu.Lock()
	c.saw(sent)
	c.accepted.add(sent, n)
	if !c.paused || !sent.Before(c.pauseEnd) {
		c.sincePause += n
	}
	w := sig.Requests
	if c.cfg.units == TextTokens {
		w = sig.Tokens
		if w.Reset < 0 {
			// Together's token headers carry no reset: its token window
			// is the request window's second.
			w.Reset = sig.Requests.Reset
		}
	}
	// A count of what remains: it held when this request reached the
	// server. Whatever was granted before it but not yet answered when it
	// was sent may have reached the server after it, so it comes off, and
	// so does everything granted since: bound is what the bucket may have
	// granted in all. Against a bucket, whose counts keep rising, only
	// what was not even sent comes off: answers take their time, and the
	// bucket's own rate covers the rest.
	report := w.Remaining >= 0 && w.Reset > 0
	var bound, nextBound float64
	var until, next time.Time
	if report {
		c.learnKind(sent, w.Reset)
		lag := tk.flying
		if c.kind < 0 {
			lag = tk.unsent
		}
		bound = w.Remaining - lag + tk.seq
		until = now.Add(w.Reset + c.slack)
		if report = bound > c.best || !now.Before(c.bestUntil); report {
			c.best, c.bestUntil = bound, until
			// The reset as counted from when the request left, which
			// is close to when the server counted.
			c.period = max(c.period, until.Sub(sent))
			// A window: nothing more until its reset, then its full limit
			// (less the same, in case it is a bucket that refilled only
			// to full): so the window after is bound too.
			if w.Limit >= 0 {
				nextBound = max(w.Limit, w.Remaining) - lag + tk.seq
				next = until.Add(c.period)
			}
		}
	}
	// The bucket is told under c.mu, so that two answers cannot reach it in
	// the other order than they were judged in.
	if raise := c.target(now); raise > c.rate*1.001 || (raise > c.rate && raise >= c.ceiling) {
		c.rate = raise
		c.b.SetRate(in(raise, time.Second))
		c.rateChanged(req)
	}
	switch {
	case report && c.kind < 0:
		// A bucket refills as it goes: its count is what the bucket
		// holds now, and the bucket's own rate does the rest.
		c.b.serverLevel(bound, sent)
	case report:
		c.b.serverCount(bound, until, nextBound, next)
	}
	c.mu.Unlock()
}

// kindTolerance is how far apart two resets may end and still name one
// window: the jitter of the network between client and server.
const kindTolerance = 50 * time.Millisecond

// learnKind votes on the server's kind with a count sent at sent whose
// reset was reset. c.mu must be held.
func (c *control) learnKind(sent time.Time, reset time.Duration) {
	ends := sent.Add(reset)
	if d := sent.Sub(c.kindSent); c.kindSent.IsZero() || !sent.Before(c.kindEnds.Add(-kindTolerance)) {
		// The first count, or one sent after the last one's window ended,
		// when a window would have moved on too: nothing to compare.
		c.kindSent, c.kindEnds = sent, ends
		return
	} else if d > -kindTolerance && d < kindTolerance {
		return // too close to tell
	}
	if d := ends.Sub(c.kindEnds); d > -kindTolerance && d < kindTolerance {
		c.kind = min(c.kind+1, 4)
	} else {
		c.kind = max(c.kind-1, -4)
	}
	c.kindSent, c.kindEnds = sent, ends
}

// refused handles a 429 to req: pause the bucket and, once a pause, lower
// the rate.
func (c *control) refused(req *http.Request, sig *transport.Signals, now, sent time.Time) {
	wait := sig.ServerWait(http.StatusTooManyRequests)
	if wait < 0 {
		wait = c.cfg.defaultPause
		if wait <= 0 {
			wait = time.Second
		}
	}
	wait = min(wait, c.cfg.maxPause)
	until := now.Add(wait)

	c.mu.Lock()
	defer c.mu.Unlock()
	c.saw(sent)
	if wait < min(maxSlack, time.Duration(0.1*float64(time.Second)/c.rate)) {
		// Refused a hair before the server was ready: perhaps a reset
		// rounded down, as an RFC 3339 time cut to the millisecond is.
		// End the server's windows that much later from now on.
		c.slack = max(c.slack, wait)
	}
	// A 429 of a request sent before the pause ended belongs to it; so does
	// one sent after, when nothing went through since: the server's reset
	// was a little short, and nothing new was learnt.
	flying := c.b.flying()
	if c.paused && (sent.Before(c.pauseEnd) || c.sincePause+flying == 0) {
		if until.After(c.pauseEnd) {
			c.pauseEnd = until
		}
		c.b.Pause(until)
		c.pausedBy(req, now)
		return
	}
	// Measure over the recent past, since the pause ended: a server that
	// refuses while we send faster than it allows accepts exactly its
	// limit, and while we probe just above it, what it accepted recently is
	// that limit too. The span runs to the end of the new pause, when the
	// server has its next token; requests still in flight were sent just
	// before this 429, and went through.
	from := later(c.start, now.Add(-measureWindow))
	if c.paused {
		from = later(from, c.pauseEnd)
		if c.resumedSeen {
			from = later(from, c.resumed)
		}
	}
	// A span shorter than a token's time at the rate measures nothing but
	// the server's float slack: a 429 that says "now".
	span := max(until.Sub(from), time.Duration(float64(time.Second)/c.rate))
	limit := c.rate * blindDecrease
	if c.paused || now.Sub(c.start) >= minMeasure {
		accepted := c.sincePause
		if from.Equal(now.Add(-measureWindow)) {
			accepted = c.accepted.since(from.Truncate(slot))
		}
		measured := (accepted + flying) / span.Seconds()
		// The measure can only be lower than the rate (the server refused
		// some); far lower means we were not sending all the time, and a
		// tenth per pause is as far as one measure is trusted.
		limit = min(max(measured, c.rate*0.1), c.rate)
	}
	c.plateau = limit
	was := c.rate
	c.rate = clampRate(limit*beta, c.floor, c.ceiling)
	c.mode = probing
	c.paused, c.pauseEnd, c.resumedSeen, c.sincePause = true, until, false, 0
	c.b.SetRate(in(c.rate, time.Second))
	c.b.Pause(until)
	c.pausedBy(req, now)
	if c.rate != was {
		c.rateChanged(req)
	}
}

// saw notes a request sent at sent: the first of all, and the first since
// the pause ended, start the spans a limit is measured over; answers come
// back in any order. c.mu must be held.
func (c *control) saw(sent time.Time) {
	if c.start.IsZero() || sent.Before(c.start) {
		c.start = sent
	}
	if c.paused && !sent.Before(c.pauseEnd) && (!c.resumedSeen || sent.Before(c.resumed)) {
		c.resumed, c.resumedSeen = sent, true
	}
}

// target is the rate the controller would set at now, in tokens a second.
// c.mu must be held.
func (c *control) target(now time.Time) float64 {
	switch c.mode {
	case slowStart:
		doublings := now.Sub(c.start).Seconds() / slowStartDoubling.Seconds()
		r := c.rate0 * math.Pow(2, min(doublings, 64))
		return clampRate(r, c.floor, c.ceiling)
	case probing:
		if now.Before(c.pauseEnd) {
			return c.rate
		}
		x := (now.Sub(c.pauseEnd).Seconds() - probe.Seconds()) / probe.Seconds()
		return clampRate(c.plateau*(1+(1-beta)*x*x*x), c.floor, c.ceiling)
	}
	return c.rate
}

// slots is how many slots a meter keeps: more than measureWindow.
const slots = 2*int(measureWindow/slot) + 4

// meter counts tokens by the slot of time they were sent in, over the
// last few measure windows: a fixed ring, whatever the rate.
type meter struct {
	idx [slots]int64
	n   [slots]float64
}

func (m *meter) add(at time.Time, n float64) {
	i := at.UnixNano() / int64(slot)
	j := int(i % int64(slots))
	if m.idx[j] != i {
		m.idx[j], m.n[j] = i, 0
	}
	m.n[j] += n
}

// since sums the tokens sent at or after from (a slot boundary).
func (m *meter) since(from time.Time) float64 {
	lo := from.UnixNano() / int64(slot)
	var sum float64
	for j := range m.idx {
		if m.idx[j] >= lo {
			sum += m.n[j]
		}
	}
	return sum
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
