package bucket

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// The rate controller's constants, chosen against the server models of
// conformance.Matrix (matrix_test.go), the scenarios of goals_test.go and
// nginx and express-rate-limit (the compare module's reallimit).
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
	// quietDecrease lowers the rate at the first 429 after a quiet spell,
	// a probe's end: just below the rate reached, which is above the limit.
	quietDecrease = 0.95
	// The probe k is the time the cubic takes to come back to the
	// measured limit, and beyond it to climb a cubic's convex half. k
	// sets how often a server at a steady limit is probed,
	// so how many of its answers are 429s: it doubles, up to maxProbe,
	// while each 429 finds the limit where it was, and halves, down to
	// minProbe, while each finds it grown (a limit that grows with use, as
	// Together's dynamic one does).
	minProbe   = 8 * time.Second
	firstProbe = 8 * time.Second
	maxProbe   = 60 * time.Second
	// grown is how much higher than the last a measured limit must be to
	// count as growth.
	grown = 1.25
	// lowerBound is the share of a measure's span spent in the process's
	// own pauses past which the measure is a bound below the limit, and
	// boundProbe how soon the climb goes above such a bound.
	lowerBound = 0.25
	boundProbe = 2 * time.Second
	// minSpan is the shortest span whose accepted requests measure a
	// limit, and it must hold a few tokens at the rate too.
	minSpan = 500 * time.Millisecond
	// minCounted is the fewest requests a server that says nothing must
	// have accepted between its refusals for a shorter span to measure
	// it (see measure): its count is good to one request either way.
	minCounted = 2
	// saturated is the longest a resumption may go before it is refused
	// again and still be known to have sent above the limit all along.
	saturated = 5 * time.Second
	// guessHold is how long a guessed rate is held: refused again in
	// that time, the limit is below it and measured; not, the rate heads
	// back to just below the one refused.
	guessHold = 2 * time.Second
	// maxDecrease bounds one measured decrease.
	maxDecrease = 0.2
	// distrust is how long the server's counts of what remains are ignored
	// after a 429 came while they said something remained.
	distrust = 10 * time.Minute
	// longPause is the shortest 429 reset that names a window rather than
	// the next token of a bucket (it must also be a few tokens' time at
	// the rate): the server counts in windows, and the next one can be
	// spent at once.
	longPause = 1500 * time.Millisecond
	// maxSlack bounds how early a server's resets are taken to be: the
	// rounding of a reset to the millisecond, not a wait of its own.
	maxSlack = 5 * time.Millisecond
	// slowStartDoubling is how often slow start doubles the rate.
	slowStartDoubling = 500 * time.Millisecond
	// maxRate bounds a rate with no ceiling, so doubling stays finite.
	maxRate = 1e9
)

type mode int8

const (
	steady    mode = iota // the configured rate, until a 429
	slowStart             // unknown rate: doubling until a 429
	holding               // after a 429 that did not measure the limit: until the next one does
	probing               // after a 429 that measured it: the cubic
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

	// refusals counts the resumptions in a row refused before anything was
	// accepted: a 429 that names no wait pauses twice as long each time.
	refusals int

	// refusedAt is when the 429 that started the current pause came: the
	// server was empty then.
	refusedAt time.Time

	// The current pause: requests sent before its end that come back 429
	// belong to it.
	paused      bool
	pauseEnd    time.Time
	resumed     time.Time // the first request sent after the pause, if seen
	resumedSeen bool
	// sincePause counts what the server accepted of the requests sent
	// since the pause ended (since the start before any pause).
	sincePause float64
	// pausedAt is when the current pause began, and older the tokens then
	// in flight whose answers have not come back since: sent before the
	// pause, what becomes of them says nothing of the server after it.
	pausedAt time.Time
	older    float64
	// sinceRefused counts what was accepted of the requests sent since
	// refusedAt: the server was empty then, so over a span that ends in a
	// 429 this is exactly its limit.
	sinceRefused float64
	// pausedFor is how much of the span since refusedAt this process
	// spent in its own pauses for 429s that named no wait: the server may
	// have stood idle then, so a measure over a span mostly paused is a
	// lower bound of the limit, not the limit.
	pausedFor time.Duration
	// bounded: the last measure was such a bound, and the climb above it
	// started soon, or a guess held and the climb above it started; the
	// next 429 shows the limit just below the rate reached, as after a
	// quiet spell, not over a span that climbed.
	bounded bool
	// soon counts the 429s of the current span that came too soon to
	// measure: with one, the refusals of a server that says nothing are
	// a chain, each with the server empty.
	soon int
	// jittered: a 429 came while a quiet 429's hold had the server accept
	// all it was sent, and was taken for jitter (see refusedLocked); the
	// next 429 of the hold measures.
	jittered bool
	// twoAtOnce: in the current span, while the rate was a guess, a
	// resumption had two requests or more accepted before the next
	// refusal, with every answer in. Above the limit, a server that
	// holds one request at most accepts one: this one holds a burst,
	// whose refill does not stop while the process pauses.
	twoAtOnce bool
	// The last measures of a server that says nothing, pooled while
	// their spans adjoin and agree: what was accepted over them, the
	// time they cover, and when the last ended.
	pooledN   float64
	pooledFor time.Duration
	pooledEnd time.Time
	// peak is what the server accepted in the second before the last
	// guess's 429 (by when the requests were sent), with every answer
	// in; 0 when not known.
	peak float64
	// The limit measured at the last 429: the cubic's plateau; and k,
	// the time the cubic takes to come back to it, which also sets how
	// fast it climbs beyond.
	plateau float64
	k       time.Duration
	epoch   time.Time // when the climb back to the plateau started
	guessed bool      // the rate held was a guess (blindDecrease), not a probe's
	// guessFrom is the rate a guess lowered: the limit lies below it.
	guessFrom float64
	measured  bool // a 429 has measured the limit
	// windowed is set while the pause the server asked for is a window's:
	// long beside the rate's tokens.
	windowed bool
	// windowEnds is how long after the last window the server named its
	// requests may still be leaving it one by one, as a sliding log
	// frees what it accepted a window before in the order it came: the
	// pause's end plus the pause's length, as a window is no shorter than
	// the wait it names.
	windowEnds time.Time

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

	// use predicts a limit that grows with use (WithUseBasedLimit); nil
	// without the rule.
	use *useTracker

	// countsOff is when the server's counts may be trusted again after a
	// 429 that they did not foresee.
	countsOff time.Time

	// sustained is the rate held without a 429 through the quiet spell
	// before the last 429, for the measure that follows it.
	sustained float64

	// used counts what the server accepted, by the second it was sent in:
	// slow start's evidence that the rate is used.
	used perSecond

	// named is the rate the server's counts name, an upper bound of its
	// own (see observe); 0 when its counts are not read.
	named float64

	// countKind tells windows from buckets by the resets of the server's
	// counts; until told, counts are read as windows, which is safe for
	// both.
	countKind kindVote

	// held are the 429s whose bodies have not told yet whether the limit
	// refused them (WithNotLimited), and nheld how many (read without
	// c.mu, on every request).
	held  []*heldRefusal
	nheld atomic.Int32
}

func newControl(b *Bucket, cfg limitConfig) *control {
	c := &control{b: b, cfg: cfg, rate: b.Rate().PerSecond(), k: maxProbe}
	c.rate0 = c.rate
	c.ceiling = cfg.ceiling.PerSecond()
	if !cfg.ceiling.Known() {
		c.ceiling = c.rate
		if b.unknown {
			c.ceiling = maxRate
		}
	}
	c.use = newUseTracker(cfg.grows)
	c.floor = min(cfg.floor.PerSecond(), c.ceiling)
	if !cfg.floor.Known() {
		c.floor = min(1.0/60, c.ceiling)
	}
	if b.unknown {
		c.mode = slowStart
	}
	if c.ceiling < maxRate {
		// Another process's Limit, sharing the store, may have another
		// ceiling: this one's holds here.
		b.limitRate(c.ceiling)
	}
	return c
}

// ownWindow makes sig, what the answer resp says, what it says to a
// limiter of a token limit of its own (TokenLimit.Header): that limit's
// window alone, with the server's directed wait and verdict. An info
// that shares signals holds Anthropic's windows, read with the rest.
func (c *control) ownWindow(sig *transport.Signals, info *transport.Info, resp *http.Response, now time.Time) {
	k := &c.cfg.own
	sig.Requests = transport.Window{Limit: -1, Remaining: -1, Reset: -1, Period: -1}
	sig.Tokens = info.Window(resp, now, k[0], k[1], k[2])
}

// observe learns from the answer to req (described by info, nil when it
// was not inspected), a request of n tokens sent at sent and answered at
// now, granted with tk. seen: the answer is new, and is handed to
// cfg.gates too (Keyed's learning from an answer its limiters saw
// already does not hand it on again).
func (c *control) observe(req *http.Request, info *transport.Info, resp *http.Response, sent, now time.Time, tk ticket, n float64, seen bool) {
	sig := info.Signals(resp, now)
	if c.cfg.own[0] != "" {
		c.ownWindow(&sig, info, resp, now)
	}
	if seen {
		for _, g := range c.cfg.gates {
			g.answer(req, resp, &sig)
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		if c.cfg.notLimited != nil && resp.Body != nil && resp.Body != http.NoBody {
			// Only the body tells whether the limit refused it: the
			// refusal is held until whoever reads the body shows it (see
			// holdRefusal).
			c.holdRefusal(req, &sig, resp, now, sent, n, seen)
			return
		}
		c.refused(req, &sig, now, sent, n, true)
		return
	}

	var news storeNews
	c.mu.Lock()
	c.saw(sent, n)
	if !sent.Before(c.pausedAt) {
		// Accepted since the pause began: the next blind pause starts
		// again from one token's time. (Accepted from before it, a
		// request proves nothing of the pauses since.)
		c.refusals = 0
	}
	c.used.add(sent, n)
	if !c.paused || !sent.Before(c.pauseEnd) {
		c.sincePause += n
	}
	if !sent.Before(c.refusedAt) {
		c.sinceRefused += n
	}
	if c.use != nil {
		c.use.succeeded(sent, n)
	}
	w := c.window(&sig)
	// A count of what remains: it held when this request reached the
	// server. Whatever was granted before it but not yet answered when it
	// was sent may have reached the server after it, so it comes off, and
	// so does everything granted since: bound is what the bucket may have
	// granted in all. Against a bucket, whose counts keep rising, only
	// what was not even sent comes off: answers take their time, and the
	// bucket's own rate covers the rest.
	report := w.Remaining >= 0 && w.Reset > 0 && !now.Before(c.countsOff)
	var bound, nextBound float64
	var until, next time.Time
	if report {
		c.countKind.learn(now, w.Reset)
		lag := tk.flying
		if c.countKind.kind < 0 {
			lag = tk.unsent
		}
		bound = w.Remaining - lag + tk.seq
		until = now.Add(w.Reset + c.slack)
		if report = bound > c.best || !now.Before(c.bestUntil); report {
			c.best, c.bestUntil = bound, until
			// The reset as counted from when the request left, which
			// is close to when the server counted. A reset beyond the
			// longest pause is not obeyed, and teaches nothing: kept,
			// one garbage reset of a day would make the window after
			// every count a day long, and name a rate of a day.
			if d := until.Sub(sent); d <= c.cfg.maxPause {
				c.period = max(c.period, d)
			}
			// A window: nothing more until its reset, then its full limit
			// (less the same, in case it is a bucket that refilled only
			// to full): so the window after is bound too.
			if w.Limit >= 0 {
				nextBound = max(w.Limit, w.Remaining) - lag + tk.seq
				next = until.Add(c.period)
			}
		}
	}
	// A server that counts names a rate no lower than its own: its whole
	// limit in the longest reset it gave (a window's length, a bucket's
	// time to fill). Slow start ends there, so that a server whose counts
	// keep every 429 away does not leave the rate doubling without end,
	// unlimited the day its counts stop.
	// The rate never climbs above it while the counts are read.
	if report && w.Limit > 0 && now.Add(w.Reset).Sub(sent) <= c.cfg.maxPause {
		if span := max(c.period, now.Add(w.Reset).Sub(sent)); span > 0 {
			c.named = w.Limit / span.Seconds()
			if c.mode == slowStart && c.own(now) > c.named {
				c.mode, c.plateau, c.k, c.epoch, c.measured = probing, min(c.named, c.ceiling), maxProbe, now.Add(-maxProbe), true
			}
		}
	}
	// A server that counts says how fast it refills: what it has used of
	// its limit comes back by the reset. The rate is at least that, or the
	// bucket would leave the server's refill unused (a sliding log's, whose
	// counts look like a bucket's).
	// The reset is counted from when the request left: a reset given as a
	// time, read when the answer came, would pass the answer's latency for
	// refill, and a relative one loses only a little.
	if report && w.Limit > 0 && w.Reset > 0 && c.mode != slowStart {
		// The refill can be the limit itself, exactly: the plateau stays
		// a step below it, so that the probes beyond come no sooner than
		// they would.
		if refill := beta * max(w.Limit-w.Remaining, 1) / now.Add(w.Reset).Sub(sent).Seconds(); refill > c.plateau {
			c.plateau = min(refill, c.ceiling)
		}
	}
	// The bucket is told under c.mu, so that two answers cannot reach it in
	// the other order than they were judged in (its store, after).
	if raise := c.target(now); raise > c.rate*1.001 || (raise > c.rate && raise >= c.ceiling) {
		c.rate = raise
		news.rate = c.b.setRateHere(in(raise, time.Second))
		c.rateChanged(req)
	}
	switch {
	case report && c.countKind.kind < 0:
		// A bucket refills as it goes: its count is what the bucket
		// holds now, and the bucket's own rate does the rest.
		c.b.serverLevel(bound, sent, now)
	case report && until.Sub(now) > c.cfg.maxPause:
		// No answer holds the key longer than the longest pause: the
		// window is obeyed that long, and the server asked again then (a
		// 429 then says how much longer).
		c.b.serverCount(bound, now.Add(c.cfg.maxPause), 0, time.Time{}, now)
	case report:
		c.b.serverCount(bound, until, nextBound, next, now)
	}
	c.mu.Unlock()
	// The store, a round trip away, is told with no lock held: a slow
	// store delays this answer, not every answer of the Limit.
	c.b.tellStore(news)
}

// readsCounts reports whether the server's counts of what remains are
// read at now: not while they are distrusted, after a 429 they did not
// foresee.
func (c *control) readsCounts(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !now.Before(c.countsOff)
}

// window is the server's count the bucket's tokens are counted against,
// made safe to obey: a count above its own limit is the limit, and a limit
// below one unit (a request; a token) is no limit at all. A reset further
// than the longest pause is bounded where the window is obeyed. c.mu must
// be held.
func (c *control) window(sig *transport.Signals) transport.Window {
	w := sig.Requests
	if c.cfg.units == TextTokens {
		w = sig.Tokens
		if w.Reset < 0 {
			// Together's token headers carry no reset: its token window
			// is the request window's second.
			w.Reset = sig.Requests.Reset
		}
	}
	if w.Limit >= 0 && w.Limit < 1 {
		return transport.Window{Limit: -1, Remaining: -1, Reset: -1}
	}
	if w.Limit >= 0 && w.Remaining > w.Limit {
		w.Remaining = w.Limit
	}
	return w
}

// kindSpan is how far apart two counts must have come to vote on the
// server's kind: far enough that the latency's jitter, which moves where a
// relative reset seems to end, is small beside how far a bucket's reset
// moves.
const kindSpan = time.Second

// kindVote tells a server that counts in windows (kind > 0) from one that
// refills as it goes (kind < 0), from the end each of its resets names: a
// window's resets end at the same moment, however far apart they came; a
// bucket's (or a sliding log's) move as far as the answers. Until told,
// kind is 0.
//
// Each reset is counted from its answer's arrival. An absolute reset (a
// time) then ends where it says. A relative one ends after the time the
// server counted from by the answer's way back, which is short and steady,
// where counted from the request's sending it would end before it by the
// request's wait in the server's queue: a server under load (express on a
// busy event loop) kept some requests a second before counting them, and
// their resets, a second short, voted a fixed window a bucket, whose
// counts the limiter then let its own rate refill: 429s at each window's
// end, and the wait they asked.
type kindVote struct {
	kind     int
	at, ends time.Time // the voting answer's arrival, and where its reset ends
}

// learn votes with a reset of reset read in an answer that came at at.
func (v *kindVote) learn(at time.Time, reset time.Duration) {
	ends := at.Add(reset)
	if v.at.IsZero() || !at.Before(v.ends) {
		// The first, or one that came after the last one's window ended,
		// when a window would have moved on too: nothing to compare.
		v.at, v.ends = at, ends
		return
	}
	d, moved := at.Sub(v.at), ends.Sub(v.ends)
	// Too close to tell: less than kindSpan apart, or than half the
	// last reset when that is shorter (a per-second bucket's resets are
	// all within a second, and move as far as the answers all the same).
	span := min(kindSpan, v.ends.Sub(v.at)/2)
	if last := v.ends.Sub(v.at); reset%time.Second == 0 && last%time.Second == 0 && last > 2*time.Second {
		// Resets in whole seconds, rounded up as express-rate-limit's
		// draft-8 t is: each end may be up to a second late, so a
		// window's ends lie within a second of one another, and answers
		// less than two seconds apart could vote it a bucket: they do
		// not vote, unless their ends moved further than a window's can,
		// a second and a quarter for the jitter of the answers' way
		// back (a sliding log's resets of its whole window, the same on
		// every answer, move as far as the answers). (A per-second
		// bucket's resets of 1 s vote as below.)
		if d < 2*time.Second && d > -2*time.Second {
			if abs(moved) < time.Second+time.Second/4 || abs(moved-d) >= time.Second {
				return
			}
			span = 0 // a bucket, voted below
		}
	}
	if d < span && d > -span {
		return
	}
	if moved < d/2 && moved > -d/2 {
		v.kind = min(v.kind+1, 4)
	} else {
		v.kind = max(v.kind-1, -4)
	}
	v.at, v.ends = at, ends
}

// abs is the length of d, whatever its sign.
func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// refused handles a 429 to req: pause the bucket and, once a pause, lower
// the rate. report: the pause is reported (EventPaused).
func (c *control) refused(req *http.Request, sig *transport.Signals, now, sent time.Time, n float64, report bool) {
	c.mu.Lock()
	news := c.refusedLocked(req, sig, now, sent, n, report)
	c.mu.Unlock()
	c.b.tellStore(news)
}

// refusedLocked is refused under c.mu, for a request of n tokens; it
// returns what the store is to be told once c.mu is released.
func (c *control) refusedLocked(req *http.Request, sig *transport.Signals, now, sent time.Time, n float64, report bool) storeNews {
	c.saw(sent, n)
	named := sig.ServerWait(http.StatusTooManyRequests)
	// A 429 of a request sent before the pause ended belongs to it; so does
	// one sent after, when nothing went through since: the server's reset
	// was a little short, and nothing new was learnt.
	flying := c.b.flying()
	out := flying
	if named < 0 && sig.Requests.Remaining < 0 && sig.Tokens.Remaining < 0 {
		// A server that says nothing at all is waited out by blind pauses
		// alone, and what was sent before the pause began says nothing of
		// them: only what was sent since may still go through. (A server
		// that counts and refuses what its count allowed has another
		// limit binding, which a rate judged afresh may be what meets.)
		out = max(0, flying-c.older)
	}
	// (Sent long after the pause, it starts a pause of its own: the key
	// was idle, not refused at once.)
	again := c.sincePause+out == 0 && sent.Sub(c.pauseEnd) < saturated
	joins := c.paused && (sent.Before(c.pauseEnd) || again)
	if joins && !sent.Before(c.pauseEnd) && named < 0 {
		// Resumed, and refused again at once: this pause is already the
		// longer one.
		c.refusals++
	}
	wait := named
	if wait < 0 {
		wait = c.blindPause()
	}
	wait = min(wait, c.cfg.maxPause)
	until := now.Add(wait)
	if wait < min(maxSlack, time.Duration(0.1*float64(time.Second)/c.rate)) {
		// Refused a hair before the server was ready: perhaps a reset
		// rounded down, as an RFC 3339 time cut to the millisecond is.
		// End the server's windows that much later from now on.
		c.slack = max(c.slack, wait)
	}
	if token := time.Duration(float64(time.Second) / c.rate); named >= 0 && named < token && !c.windowEnds.IsZero() {
		// A server that has named a window may be a sliding log, which
		// frees each request a window after it came: refused less than a
		// token's time before the next leaves, we send in step with what
		// we sent then, a hair early. Half a token's time more puts our
		// sends between its frees rather than just before them.
		wait = min(wait+token/2, c.cfg.maxPause)
		until = now.Add(wait)
	}
	w := c.window(sig)
	if w.Remaining >= 1 {
		// The count said there was room, and the server refused: another
		// limit binds (tokens, a limit shared with other models or keys),
		// and the count would only send more into it.
		c.countsOff = now.Add(distrust)
		c.best, c.bestUntil = 0, time.Time{}
	}
	if joins {
		if named >= longPause && wait.Seconds()*c.rate >= 3 {
			// The rest of a window longer than the longest pause.
			c.windowEnds = later(c.windowEnds, until.Add(wait))
			c.windowPaused(until)
		}
		if until.After(c.pauseEnd) {
			c.pauseEnd = until
		}
		c.b.pauseHere(until)
		if report {
			c.pausedBy(req, now)
		}
		return storeNews{pause: until}
	}

	c.refusals = 0
	was := c.rate
	span := now.Sub(c.refusedAt)
	// silent: the 429 names no wait and counts nothing.
	silent := named < 0 && sig.Requests.Remaining < 0 && sig.Tokens.Remaining < 0
	// own is the rate the controller's own probing had reached when a
	// reading of the use-based rule that lifted the rate above it proved
	// wrong here; 0 otherwise.
	own := 0.0
	if c.use != nil {
		// Refused at the rate reached: a reading of the rule that said the
		// server allows as much was wrong.
		wrong := c.use.judge(now, c.rate)
		if wrong && silent && c.mode == probing && c.measured && !now.Before(c.epoch) {
			if r := c.own(now); r < c.rate {
				own = r
			}
		}
	}
	limit, how := c.measure(now, flying, silent)
	if c.bounded && how == measuredLimit {
		how = quiet
	}
	if how == measuredLimit && silent && c.mode == holding && !c.guessed && !c.jittered && c.soon == 0 {
		// Refused while holding just below the rate a quiet 429 refused,
		// by a server that says nothing, which accepted every request
		// sent since that 429 but this one (a request's worth of
		// counting either way), over five tokens' time or more of
		// sending: the server's limit lies at the rate held or above
		// it, and this 429 is timing's jitter (a request that reached a
		// server with no burst late, and the next one on time; on a
		// loaded machine, one in a few hundred). Measured, the span
		// would count the pause after the quiet 429 as the server's,
		// and the rate would drop a tenth under a limit found lower
		// still, for a minute: most of a run. The rate holds; a second
		// 429 in the hold measures.
		if active := (span - c.pausedFor).Seconds(); active*c.rate >= 5 && c.sinceRefused+flying+1 >= c.rate*active {
			how, c.jittered = jitter, true
		}
	}
	window := wait >= longPause && wait.Seconds()*c.rate >= 3
	if window && named >= 0 {
		c.windowEnds = later(c.windowEnds, until.Add(wait))
	}
	// A server that counts nothing, and named a window: its short waits
	// until the window is over say when its next request leaves the
	// window, not that the rate is too high. (A server that counts says
	// how much of its window is left, and the rate is judged by it.)
	freeing := now.Before(c.windowEnds) && w.Remaining < 0
	if c.windowed || window || freeing {
		// A window's pause, now or the last, or a window freeing: the
		// server refills at once when a window opens, or as it empties,
		// not at a rate, and its 429s say nothing of a rate. The rate
		// stays (and stops doubling).
		how = tooSoon
		if c.mode == slowStart {
			c.mode, c.plateau, c.k, c.epoch = probing, c.rate, maxProbe, until
		}
	}
	if silent && c.guessed && flying == 0 && c.sincePause >= 2 && (how == tooSoon || how == measuredLimit) {
		c.twoAtOnce = true
	}
	switch how {
	case measuredLimit:
		// The measure can only be lower than the rate (the server refused
		// some); far lower means the process was not sending all the time,
		// or shares the limit with others, and measures them: it is
		// trusted down to a fifth of the rate per 429.
		if c.use != nil && c.sinceRefused+flying >= minJudged {
			c.use.judge(now, limit/refused)
		}
		// A rate held without a 429 for the quiet spell before is
		// evidence too: a measure far under it took pauses the server
		// named longer than it needed (whole seconds of Retry-After)
		// for its time. The next 429 measures afresh.
		if silent {
			limit = c.pool(now, c.sinceRefused+flying, span)
		}
		limit, c.sustained = max(limit, c.sustained), 0
		c.probed(min(max(limit, c.rate*maxDecrease), c.rate))
		c.bounded = false
		// A server that accepted, in the second before the guess's 429,
		// more than the chain after it measures, beyond the count's
		// error, accepted above its limit for a second: it holds a burst,
		// as one that let two through in a resumption does.
		burst := c.twoAtOnce || (c.guessed && c.peak >= limit+minCounted)
		c.peak = 0
		if c.pausedFor > time.Duration(float64(span)*lowerBound) && !burst {
			// Paused for much of the span: against a server with no burst
			// the idle time is lost capacity, and the measure only a
			// bound below the limit. The climb above it comes soon.
			// (Not against a server shown to hold a burst: its refill
			// went on while the process paused, and the measure is the
			// limit.)
			c.k, c.bounded = boundProbe, true
			// The count is good to a request either way, and a bound
			// errs low already: it is taken at the count's upper side,
			// but no higher than the guess a 429 makes of the rate
			// refused (over a quarter of a second, a request more is
			// 4/s more). Two requests in 0.4 s, a chain's count at the
			// start against nginx without a burst, measure 5/s of its
			// 10; three, 7.5/s: a climb of four seconds less.
			c.plateau = max(c.plateau, min((c.sinceRefused+flying+1)/span.Seconds(), was*blindDecrease))
		}
		c.rate = clampRate(c.plateau*beta, c.floor, c.ceiling)
		c.mode = probing
	case quiet:
		c.bounded = false
		// The first 429 after a quiet spell: the limit lies below the
		// rate reached, by as much as the server's burst let it overshoot.
		// The rate stays close above the limit, so that the next 429
		// comes soon and measures it.
		c.sustained = 0
		if c.mode == probing && !now.Add(-saturated).Before(c.epoch) {
			c.sustained = c.own(now.Add(-saturated))
		}
		r := c.rate * quietDecrease
		if own > 0 {
			// The use-based rule lifted the rate above the controller's
			// own, and a server that says nothing refused it: the lift
			// was wrong, not the limit measured before. The rate goes
			// back to the controller's own, or to what the server
			// accepted since its last 429 (it was empty then and now),
			// whichever is higher; not to just below the lift.
			accepted := 0.0
			if span > 0 {
				accepted = (c.sinceRefused + flying) / span.Seconds()
			}
			r = min(r, max(own, accepted))
		}
		c.rate = clampRate(r, c.floor, c.ceiling)
		c.mode, c.guessed = holding, false
	case jitter:
		// The pause, and nothing else: the hold goes on, and its span
		// with it.
	case tooSoon:
		// Refused again too soon after the last to measure: the rate is
		// above the limit. It stays, and the span goes on from the last
		// 429 until one is long enough to measure.
		c.soon++
	default:
		// Nothing to measure yet: a guess, held until the next 429
		// measures the limit.
		c.guessFrom = c.rate
		c.peak = 0
		if silent && flying == 0 {
			c.peak = c.used.last(now)
		}
		c.rate = clampRate(c.rate*blindDecrease, c.floor, c.ceiling)
		c.mode, c.guessed = holding, true
		if named < 0 {
			// The pause is one token's time at the guess, the best there
			// is of the server's token, not at the rate refused. Told
			// twice a server's rate, the first 429 comes one told token
			// after the first request, half the server's: one more would
			// resume just on the server's next token, and timing would
			// decide (the first request, which opens the connection,
			// reaches the server late by a millisecond or two). Refused
			// at once, the pause doubles, and the chain after it counts
			// two requests over most of half a second: a bound of 7/s
			// for nginx's 10, seconds of climbing back, and a probe that
			// overshoots fast into two or three 429s more.
			wait = c.blindPause()
			until = now.Add(wait)
		}
	}
	if how != jitter {
		c.jittered = false
	}
	if how != tooSoon && how != jitter {
		c.refusedAt, c.sinceRefused, c.pausedFor = now, 0, 0
		c.soon, c.twoAtOnce = 0, false
	}
	if window && named >= 0 {
		c.windowPaused(until)
	}
	if named < 0 {
		c.pausedFor += wait
	}
	c.windowed = window
	c.paused, c.pauseEnd, c.resumedSeen, c.sincePause = true, until, false, 0
	c.pausedAt, c.older = now, flying
	c.epoch = until
	news := storeNews{pause: until, rate: c.b.setRateHere(in(c.rate, time.Second))}
	c.b.pauseHere(until)
	if report {
		c.pausedBy(req, now)
	}
	if c.rate != was {
		c.rateChanged(req)
	}
	return news
}

// windowPaused starts the span of the next measure at until, the end of a
// window's pause: the server stood full until then, not refilling at a
// rate, and what it accepts after measures the window that follows, not
// the pause. c.mu must be held.
func (c *control) windowPaused(until time.Time) {
	if until.After(c.refusedAt) {
		c.refusedAt, c.sinceRefused, c.pausedFor = until, 0, 0
		c.soon, c.twoAtOnce = 0, false
	}
}

// saw notes the answer to a request of n tokens sent at sent: the first of
// all, and the first since the pause ended, start the spans a limit is
// measured over; answers come back in any order. One sent before the pause
// began is no longer in flight. c.mu must be held.
func (c *control) saw(sent time.Time, n float64) {
	if sent.Before(c.pausedAt) {
		c.older = max(0, c.older-n)
	}
	if c.start.IsZero() || sent.Before(c.start) {
		c.start = sent
	}
	if c.paused && !sent.Before(c.pauseEnd) && (!c.resumedSeen || sent.Before(c.resumed)) {
		c.resumed, c.resumedSeen = sent, true
	}
}

// target is the rate the controller would set at now, in tokens a second:
// its own, raised to what a use-based limit predicts (WithUseBasedLimit).
// c.mu must be held.
func (c *control) target(now time.Time) float64 {
	r := c.own(now)
	if c.named > 0 && now.Before(c.countsOff) {
		c.named = 0 // the counts are not read: nor is their rate
	}
	if c.named > 0 {
		r = min(r, max(c.named, c.floor))
	}
	// A use-based limit lifts the rate once a pause is over, except while
	// a quiet 429 is held: the hold tests whether the limit lies just
	// below the rate refused, and the refusal answered the rule's reading
	// for as long.
	quietHold := c.mode == holding && !c.guessed
	if c.mode != steady && !quietHold && (c.mode == slowStart || !now.Before(c.pauseEnd)) {
		r = c.use.floorOf(now, r, c.floor, c.ceiling)
	}
	return r
}

// own is the rate the controller's probing would set at now. c.mu must be
// held.
func (c *control) own(now time.Time) float64 {
	switch c.mode {
	case slowStart:
		doublings := now.Sub(c.start).Seconds() / slowStartDoubling.Seconds()
		r := c.rate0 * math.Pow(2, min(doublings, 64))
		// A rate the caller does not use proves nothing: slow start
		// grows no further than its doubling takes what the server
		// accepted in the last second, in a second (as TCP stops
		// growing a window it does not fill, RFC 7661). A trickle of
		// requests does not leave the rate unbounded for the burst
		// after it. (A caller that uses the rate it doubles had half
		// of it accepted over the second, or a little more: the bound
		// stays above the doubling, which goes on smoothly, one request
		// at a time, and does not jump by the count's steps.)
		r = min(r, max(c.rate0, c.used.last(now)*math.Pow(2, time.Second.Seconds()/slowStartDoubling.Seconds())))
		return clampRate(r, c.floor, c.ceiling)
	case holding:
		hold := saturated
		if c.guessed {
			hold = guessHold
		}
		if now.Before(c.pauseEnd.Add(hold)) {
			return c.rate
		}
		// Not refused again: the limit is above the rate held. After a
		// probe's 429 the held rate is just below the rate the probe
		// reached, and the limit between them: a measure. After a guess,
		// the limit may be far above, and the next probe comes soon.
		if c.guessed {
			// The guess held: the limit lies between it and the rate it
			// lowered, and the cubic heads back to just below that one
			// (a 429 of jitter, against a server with no burst, costs
			// a few seconds, not the run). What the server accepted
			// while the guess held measures the guess, not the limit,
			// and the span of the next 429 holds it, however late that
			// 429 comes: it shows the limit just below the rate it comes
			// at. (Measured, a 429 of jitter three seconds on took the
			// guess's two for the server's, and the rate stayed a sixth
			// under nginx's limit for most of a run.)
			c.plateau, c.k = max(c.rate, c.guessFrom*quietDecrease), firstProbe
			c.mode, c.epoch = probing, now.Add(-c.k)
			c.bounded = true
			return c.plateau
		} else {
			c.probed(c.rate)
			if c.jittered {
				// Refused in the hold by jitter alone: the limit is
				// at the rate held, and the next probe is a long way
				// off.
				c.k, c.jittered = maxProbe, false
			}
		}
		c.mode, c.epoch = probing, now
		return c.rate
	case probing:
		if now.Before(c.epoch) {
			return c.rate
		}
		t := now.Sub(c.epoch)
		if t < c.k {
			// Back to the plateau along a cubic: quickly at first, slowly
			// near it.
			x := 1 - t.Seconds()/c.k.Seconds()
			return clampRate(c.plateau*(1-(1-beta)*x*x*x), c.floor, c.ceiling)
		}
		// Beyond it, the cubic's convex half: slowly near the plateau,
		// faster away from it, so that a limit that has grown since is
		// found, and a fixed one probed gently.
		x := (t - c.k).Seconds() / c.k.Seconds()
		return clampRate(c.plateau*(1+(1-beta)*x*x*x), c.floor, c.ceiling)
	}
	return c.rate
}

// perSecond counts tokens over the last second by the tenth of a second
// they were sent in: a sliding second, good to a tenth. (Counted by whole
// seconds, a count jumps at each second's turn, and slow start's rate,
// bounded by it, with it: a fifth above the limit of a server with no
// burst at the first 429, whose next requests then all come too soon.)
type perSecond struct {
	slot int64 // the latest tenth counted, since the epoch
	n    [tenths]float64
}

// tenths is how many slots make perSecond's second.
const tenths = 10

func (p *perSecond) add(at time.Time, n float64) {
	s := at.UnixNano() / int64(time.Second/tenths)
	switch {
	case s > p.slot:
		for i := max(p.slot+1, s-tenths+1); i <= s; i++ {
			p.n[slotOf(i)] = 0
		}
		p.slot = s
	case s <= p.slot-tenths:
		return // older than the second counted: an answer that took its time
	}
	p.n[slotOf(s)] += n
}

// last is what was counted in the second up to now, as far as it is known.
func (p *perSecond) last(now time.Time) float64 {
	s := now.UnixNano() / int64(time.Second/tenths)
	sum := 0.0
	for i := max(s, p.slot) - tenths + 1; i <= min(s, p.slot); i++ {
		sum += p.n[slotOf(i)]
	}
	return sum
}

func slotOf(i int64) int64 { return (i%tenths + tenths) % tenths }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// minPause is the shortest pause of a 429 that names no wait.
const minPause = 50 * time.Millisecond

// blindPause is the pause of a 429 that names no wait: the server's next
// token if it is a bucket (one token's time at the rate, at least
// minPause, at most DefaultPause), or WithPause's; doubled for every
// resumption in a row refused at once, so that a window that names nothing
// is waited out in a few steps. c.mu must be held.
func (c *control) blindPause() time.Duration {
	d := c.cfg.defaultPause
	if !c.cfg.pauseSet {
		d = max(minPause, min(DefaultPause, time.Duration(float64(time.Second)/c.rate)))
	}
	// Doubled as far as the cap: a long pause doubled sixteen times is
	// past the longest time.Duration, and would wrap around to none.
	n := min(c.refusals, 16)
	if d > c.cfg.maxPause>>n {
		return c.cfg.maxPause
	}
	return d << n
}

// probed takes limit, just measured, as the new plateau, and sets how soon
// the next probe goes beyond it. c.mu must be held.
func (c *control) probed(limit float64) {
	switch {
	case !c.measured:
		// The first measure: the server's burst and the guesses before it
		// may have skewed it, and the next probe checks it soon.
		c.k, c.measured = firstProbe, true
	case limit > c.plateau*grown:
		c.k = max(c.k/2, minProbe)
	default:
		c.k = maxProbe
	}
	c.plateau = limit
}

// pool returns the limit that n accepted over span measures, pooled with
// the measures before it while they adjoin (this span began at the 429
// that ended the last) and agree within a request's count either way: the
// server was empty at every 429 between, so together they count its
// refill over the whole time, and the count's one request matters less. A
// measure that disagrees starts the pool afresh: the limit moved. c.mu
// must be held.
func (c *control) pool(now time.Time, n float64, span time.Duration) float64 {
	t := span.Seconds()
	if t <= 0 {
		return 0
	}
	if was := c.pooledFor.Seconds(); was > 0 && c.pooledEnd.Equal(c.refusedAt) &&
		math.Abs(n/t-c.pooledN/was) <= 1/t+1/was {
		c.pooledN, c.pooledFor = c.pooledN+n, c.pooledFor+span
	} else {
		c.pooledN, c.pooledFor = n, span
	}
	c.pooledEnd = now
	return c.pooledN / c.pooledFor.Seconds()
}

// How a 429 measures the limit.
const (
	blind         = iota // nothing to measure: the first 429
	tooSoon              // too soon after the last 429 to measure: the rate is above the limit
	quiet                // after a quiet spell: the limit is below the rate reached
	measuredLimit        // the limit itself
	jitter               // in a quiet 429's hold, with all else accepted: timing's noise
)

// measure is the limit the accepted requests show at a 429, and how well.
//
// Refused again within a few seconds of resuming from a 429, the process
// sent above the limit all along, and the server was empty at the last 429
// and at this one: what it accepted in between is exactly its limit,
// whatever the process sent. Later, the process was not always above the
// limit (it climbed back to it after the pause): the limit lies between
// what the server accepted and the rate reached, and only a 429 soon after
// measures it. At the first 429 the server may have held a full burst.
// Requests still in flight were sent just before this 429, and went
// through.
//
// A span shorter than minSpan measures a server that says nothing (silent)
// once its refusals are a chain (a 429 too soon to measure came between)
// and it has accepted minCounted requests, every answer in: refused again
// and again, it was empty at each refusal, so what it accepted between
// them is its refill, to one request either way, and waiting for minSpan
// only adds refusals at a rate known to be too high. A measure so short is
// refined by the next (see pool). c.mu must be held.
func (c *control) measure(now time.Time, flying float64, silent bool) (float64, int) {
	if c.refusedAt.IsZero() {
		return 0, blind
	}
	resumed := c.pauseEnd
	if c.resumedSeen {
		resumed = later(resumed, c.resumed)
	}
	if now.Sub(resumed) > saturated || resumed.Sub(c.pauseEnd) > saturated {
		// Not refused soon after resuming, or not resumed soon after the
		// pause (the key was idle): nothing says the process sent above
		// the limit all along.
		return 0, quiet
	}
	span := now.Sub(c.refusedAt)
	chain := silent && c.soon > 0 && flying == 0 && c.sinceRefused >= minCounted
	if span < max(minSpan, time.Duration(5*float64(time.Second)/c.rate)) && !chain {
		return 0, tooSoon
	}
	return (c.sinceRefused + flying) / span.Seconds(), measuredLimit
}
