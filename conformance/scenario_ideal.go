package conformance

import (
	"math"
	"time"
	"unicode/utf8"
)

// Admission is one request the oracle gets through the server's
// limits.
type Admission struct {
	At time.Duration // since the start
	// Weight is the share of it that succeeds: 1, or 0 for a pass a fault
	// hits; for a job's batch, the expected share when faults hit a share
	// of the requests (a 10% share of 5xx: 0.9).
	Weight float64
}

// idealGuard bounds the oracle's search for a demand the limits
// never let through (a fault that never ends).
const idealGuard = 1000 * time.Hour

// idealEpsilon is float slack, so a wait of exactly the computed time is
// enough, as the server allows.
const idealEpsilon = 1e-9

// Least is the oracle's time: the least time the workload takes against
// the server's limits, for a run starting at start. The oracle is a client
// that knows the server's state and sends each request at the first
// instant the server would admit it; Least is when its last request is
// admitted. For N requests at R per second with a burst of B that is
// (N−B)/R. Every [Algorithm] is followed as [Limit] documents it, request
// and token counts both, and a dynamic limit as it grows with the
// oracle's own successes (an oracle that holds back would find less);
// faults that hit every request for a while are waited out (or, when the
// workload names a Fallback model they spare, served by it), faults that
// hit a share of requests hit the oracle's passes as the server's draws
// decide, each failed pass sent again (a job's batches, whose bytes are
// its driver's, are paid for by their expected cost: a 10% share costs
// 1/0.9 requests per success).
//
// A closed loop's oracle has the loop's callers and no more: each pass
// holds a caller until its answer comes, after the latency the server
// draws for it (a connection reset or a hang holds it for no time, a
// stream for its first chunk only), and the next request goes to the
// first caller free, so where the callers bind rather than the limits
// (a burst larger than they can send at once) the oracle is held to them
// too. It does not wait for its own last answer, so a perfect stack
// takes a little longer: Least plus one answer's latency. Its
// requests are the workload's, in order, with the tokens their texts
// count. For an open loop each request is sent at its start or the first
// admission after it, unless that is past its deadline: then it is
// answered at its start, and costs nothing, so Least is then the time the
// last request was answered. A job's requests are its batches at the
// workload's batch size.
func (s Scenario) Least(start time.Time) time.Duration {
	w := s.Workload
	if w.Every > 0 {
		_, least := s.openIdeal(start, idealGuard)
		return least
	}
	adm := s.closedIdeal(start, idealGuard, float64(w.demand()))
	if len(adm) == 0 {
		return 0
	}
	return adm[len(adm)-1].At
}

// Servable is how many of the workload's requests the oracle gets
// answered, for a run starting at start: for an open loop, those it admits
// before their deadlines, counted by their expected successes (rounded
// down); otherwise every request. A job's texts are counted apart.
func (s Scenario) Servable(start time.Time) int {
	w := s.Workload
	switch {
	case w.Texts > 0:
		return 0
	case w.Every <= 0:
		return w.Requests
	}
	adm, _ := s.openIdeal(start, idealGuard)
	var n float64
	for _, a := range adm {
		n += a.Weight
	}
	return int(n + idealEpsilon)
}

// Ideal returns the oracle's admissions (see [Scenario.Least]) until
// until, for a run starting at start: for a closed loop or a job, one
// that always has a request to send, past the workload's demand; for an
// open loop, the workload's requests that it can serve. It is the limit
// line of the comparison's plots.
func (s Scenario) Ideal(start time.Time, until time.Duration) []Admission {
	if s.Workload.Every > 0 {
		adm, _ := s.openIdeal(start, until)
		return adm
	}
	return s.closedIdeal(start, until, -1)
}

// unlimited reports whether the workload's endpoint has no limit at all.
func (s Scenario) unlimited() bool {
	lim, limited := s.Server.Limits[s.Workload.endpoint()]
	return !limited || (lim.RPM <= 0 && !lim.Dynamic && lim.TPM <= 0 && lim.OutputTPM <= 0)
}

// closedIdeal admits requests as early as the server allows until the
// demand (negative: unbounded) is met or until passes.
func (s Scenario) closedIdeal(start time.Time, until time.Duration, demand float64) []Admission {
	w := s.Workload
	callers := s.idealCallers()
	unlimited := s.unlimited()
	if unlimited && callers == nil {
		// Everything at once, as far as the demand goes.
		n := max(int(math.Ceil(demand)), w.demand())
		adm := make([]Admission, n)
		for i := range adm {
			adm[i].Weight = 1
		}
		return adm
	}
	limiters := s.idealLimiters(start)
	draw := s.idealDraws()
	var adm []Admission
	var got float64
	next := 0 // the request the oracle sends: a loop's sends one again until it succeeds
	for t := time.Duration(0); t <= until && (demand < 0 || got < demand-1e-9); {
		if free := callers.free(); t < free {
			t = free
			continue
		}
		model, end, blocked := s.modelAt(t)
		if blocked {
			t = end
			continue
		}
		il := limiters(model)
		tokens, out := s.idealTokens(next)
		if !unlimited {
			if wait := il.wait(t, tokens, out); wait > 0 {
				t += wait
				continue
			}
		}
		wt, held := draw(next, model, t)
		if !unlimited {
			il.take(t, wt, tokens, out)
		}
		callers.hold(t + held)
		adm = append(adm, Admission{At: t, Weight: wt})
		got += wt
		if w.Texts > 0 || wt > 0 {
			next++
		}
	}
	return adm
}

// idealCallers are a closed loop's callers, as the oracle holds them
// (see [Scenario.Least]): nil, for callers that never bind, when the
// server answers at once or the workload is a job (whose driver's
// concurrency is the stack's own).
func (s Scenario) idealCallers() *idealCallers {
	if s.Workload.Texts > 0 || s.Workload.Every > 0 || s.Server.Latency <= 0 && s.Server.LatencyJitter <= 0 {
		return nil
	}
	return &idealCallers{until: make([]time.Duration, max(s.Workload.Concurrency, 1))}
}

// idealCallers holds when each caller of a closed loop is free again.
type idealCallers struct {
	until []time.Duration
}

// free is when the first caller is free; 0 for nil callers.
func (c *idealCallers) free() time.Duration {
	if c == nil {
		return 0
	}
	return c.until[c.first()]
}

// hold gives the first caller free a pass, which holds it until until.
func (c *idealCallers) hold(until time.Duration) {
	if c != nil {
		c.until[c.first()] = until
	}
}

// first is the index of the first caller free.
func (c *idealCallers) first() int {
	k := 0
	for i, u := range c.until {
		if u < c.until[k] {
			k = i
		}
	}
	return k
}

// openIdeal serves the open loop's requests in order, each at the first
// moment the server accepts at or after its start, unless that moment is
// past its deadline: then it is answered at its start, and costs nothing.
// It returns the admissions until until and the time the last request was
// answered.
func (s Scenario) openIdeal(start time.Time, until time.Duration) ([]Admission, time.Duration) {
	w := s.Workload
	unlimited := s.unlimited()
	limiters := s.idealLimiters(start)
	draw := s.idealDraws()
	var adm []Admission
	var last, prev time.Duration
	for i := range w.Requests {
		release := time.Duration(i) * w.Every
		deadline := time.Duration(math.MaxInt64)
		if w.Timeout > 0 {
			deadline = release + w.Timeout
		}
		tokens, out := s.idealTokens(i)
		t := max(release, prev)
		// Sent again at the first admission after each pass a fault hits,
		// until one escapes them or the deadline passes.
		for succeeded := false; !succeeded; {
			served := false
			var model string
			for t <= deadline && t <= idealGuard {
				var end time.Duration
				var blocked bool
				if model, end, blocked = s.modelAt(t); blocked {
					t = end
					continue
				}
				if unlimited {
					served = true
					break
				}
				if wait := limiters(model).wait(t, tokens, out); wait > 0 {
					t += wait
					continue
				}
				served = true
				break
			}
			if !served || t > deadline {
				last = max(last, release)
				break
			}
			wt, _ := draw(i, model, t)
			if !unlimited {
				limiters(model).take(t, wt, tokens, out)
			}
			prev = t
			last = max(last, t)
			if t <= until {
				adm = append(adm, Admission{At: t, Weight: wt})
			}
			succeeded = wt > 0
		}
	}
	return adm, last
}

// idealTokens is the size of request i against the token limits, as the
// server's [Dialect] counts it: Together's, as [Limit.TPM] documents it
// (the text's characters over 4, rounded up, plus max_tokens); OpenAI's
// and Anthropic's, what it uses (the text's tokens and those generated),
// the output apart under an output limit.
func (s Scenario) idealTokens(i int) (in, out float64) {
	if s.Server.Dialect == DialectTogether {
		return s.Workload.idealTokens(i), 0
	}
	text := s.Workload.idealTextTokens(i)
	return text, float64(generated(s.Workload.endpoint()))
}

// idealTextTokens is the tokens of request i's text.
func (w Workload) idealTextTokens(i int) float64 {
	if w.Texts > 0 {
		return w.idealTokens(i)
	}
	text, _ := w.prompt(i)
	return math.Ceil(float64(utf8.RuneCountInString(text)) / 4)
}

// idealTokens is Together's size of request i: the text's characters over
// 4, rounded up, plus max_tokens. For a job, request i is its i-th batch.
func (w Workload) idealTokens(i int) float64 {
	if w.Texts > 0 {
		chars := 0
		for j := i * w.batchSize(); j < min((i+1)*w.batchSize(), w.Texts); j++ {
			chars += utf8.RuneCountInString(jobText(j))
		}
		return math.Ceil(float64(chars) / 4)
	}
	text, maxTokens := w.prompt(i)
	return math.Ceil(float64(utf8.RuneCountInString(text))/4) + float64(maxTokens)
}

// faultApplies reports whether f can hit the workload's requests sent to
// model.
func (s Scenario) faultApplies(f *Fault, model string) bool {
	w := s.Workload
	return (f.Endpoint == "" || f.Endpoint == w.endpoint()) && (f.Model == "" || f.Model == model)
}

// modelAt is the model the oracle sends to at t: the workload's, or, while
// a fault hits every request of it, the workload's Fallback when that is
// not hit too. When neither can serve, blocked is true and next is when
// one of them may again.
func (s Scenario) modelAt(t time.Duration) (model string, next time.Duration, blocked bool) {
	w := s.Workload
	end, blocked := s.blockedUntil(t, w.Model)
	if !blocked {
		return w.Model, t, false
	}
	if w.Fallback != "" {
		fend, fblocked := s.blockedUntil(t, w.Fallback)
		if !fblocked {
			return w.Fallback, t, false
		}
		end = min(end, fend)
	}
	return "", end, true
}

// idealDraws returns what the oracle's pass of request i, sent to model
// and admitted at t, is worth, and how long its answer holds the caller
// that sent it: for a loop's requests, 1 when it escapes every fault that
// hits a share of requests and 0 when one hits it, as the server draws
// them (see draws.go: a pass's fate follows the request's bytes and how
// many passes of it came before, so the oracle meets the very fates a
// stack sending the workload's requests meets), held for the latency the
// server draws for it, or for no time when a connection reset or a hang
// hits it; for a job's batches, whose bytes are its driver's, the
// expected share that succeeds, held for no time.
func (s Scenario) idealDraws() func(i int, model string, t time.Duration) (weight float64, held time.Duration) {
	passes := map[uint64]uint64{}
	return func(i int, model string, t time.Duration) (float64, time.Duration) {
		w := s.Workload
		if w.Texts > 0 {
			return 1 - s.failShare(t, model), 0
		}
		w.Model = model
		id := w.identity(i)
		passes[id]++
		d := newDraws(s.Server.Seed, id, passes[id])
		held := s.Server.Latency
		if s.Server.LatencyJitter > 0 {
			held += time.Duration(d.int64n(saltLatency, int64(s.Server.LatencyJitter)))
		}
		for k := range s.Server.Faults {
			f := &s.Server.Faults[k]
			if f.Share > 0 && f.Share < 1 && f.hits(w.endpoint(), model, t, d.float(saltFault+uint64(k))) {
				if f.Kind == FaultReset || f.Kind == FaultHang {
					held = 0
				}
				return 0, held
			}
		}
		return 1, held
	}
}

// idealLimiters returns the oracle's limiter for each model: one for all
// under Together's dialect, whose limits are the key's, and one a model
// under the others', whose limits are the key's on each model, as the
// server keeps them.
func (s Scenario) idealLimiters(start time.Time) func(model string) *idealLimiter {
	lim := s.Server.Limits[s.Workload.endpoint()]
	byModel := map[string]*idealLimiter{}
	return func(model string) *idealLimiter {
		if s.Server.Dialect == DialectTogether {
			model = ""
		}
		il := byModel[model]
		if il == nil {
			il = newIdealLimiter(lim, start)
			byModel[model] = il
		}
		return il
	}
}

// blockedUntil reports whether, at t, a fault hits every request of the
// workload sent to model, and when the last such fault ends.
func (s Scenario) blockedUntil(t time.Duration, model string) (time.Duration, bool) {
	end, blocked := t, false
	for again := true; again; {
		again = false
		for i := range s.Server.Faults {
			f := &s.Server.Faults[i]
			if !s.faultApplies(f, model) || (f.Share > 0 && f.Share < 1) || end < f.From || (f.Until > 0 && end >= f.Until) {
				continue
			}
			blocked, again = true, true
			if f.Until <= 0 {
				return idealGuard + 1, true
			}
			end = f.Until
		}
	}
	return end, blocked
}

// failShare is the expected share of the workload's requests to model at
// t hit by faults that hit only a share.
func (s Scenario) failShare(t time.Duration, model string) float64 {
	pass := 1.0
	for i := range s.Server.Faults {
		f := &s.Server.Faults[i]
		if s.faultApplies(f, model) && f.Share > 0 && f.Share < 1 && t >= f.From && (f.Until <= 0 || t < f.Until) {
			pass *= 1 - f.Share
		}
	}
	return 1 - pass
}

// idealLimiter follows one key's limits as [Limit] and [Algorithm]
// document them. It is written from the documentation, apart from the
// server's code, and in other terms where there are some (a sliding window
// as a sum over the log, a fixed window as an index, nginx's test as what
// the refill has to cover), so that the two check each other.
type idealLimiter struct {
	lim           Limit
	alg           Algorithm
	start         int64 // Unix nanoseconds of the run's start
	req, tok, out idealCount
	// The dynamic limit's memory: successes by Unix minute over the past
	// hour, and since the first one.
	succ     [60]float64
	mins     [60]int64
	first    int64
	total    float64
	anyTaken bool
}

// idealCount is the oracle's view of one count, requests or tokens.
type idealCount struct {
	taken bool // whether anything was admitted yet
	// Bucket: units left after the last admission, at Unix nanosecond at.
	// nginx: the excess, in thousandths, at Unix millisecond at.
	left float64
	at   int64
	// Sliding window: every admission; the log's first ones may be old.
	log []logEntry
	// Fixed window: the units of the window numbered win (clock windows)
	// or that opened at opened (windows of the first request).
	win, opened int64
	spent       float64
}

// idealRule is one count's limit at one moment.
type idealRule struct {
	perMinute, burst float64
}

func newIdealLimiter(lim Limit, start time.Time) *idealLimiter {
	alg := lim.Algorithm
	if alg == DefaultAlgorithm {
		alg = TokenBucket
		if lim.Window == time.Minute {
			alg = FixedWindow
		}
	}
	return &idealLimiter{lim: lim, alg: alg, start: start.UnixNano()}
}

// rpm is the request limit at now: RPM, or the dynamic limit.
func (l *idealLimiter) rpm(now int64) float64 {
	if !l.lim.Dynamic {
		return l.lim.RPM
	}
	floor := l.lim.Base
	if floor == 0 {
		floor = l.lim.RPM
	}
	if floor == 0 {
		floor = 60
	}
	var r float64
	if l.lim.Span == SpanInUse && l.anyTaken && now-l.first < int64(time.Hour) {
		r = 2 * l.total / max(float64(now-l.first)/float64(time.Minute), 1)
	} else {
		idx := now / int64(time.Minute)
		var sum float64
		for i, m := range l.mins {
			if idx-60 < m && m <= idx {
				sum += l.succ[i]
			}
		}
		r = 2 * sum / 60
	}
	r = max(r, floor)
	if l.lim.Cap > 0 {
		r = min(r, l.lim.Cap)
	}
	return r
}

func (l *idealLimiter) window() int64 {
	if l.lim.Window <= 0 {
		return int64(time.Minute)
	}
	return int64(l.lim.Window)
}

// wait is how long after t a request of tokens (and output tokens, under
// an output limit) has to wait to be accepted; 0 when it is accepted at t.
func (l *idealLimiter) wait(t time.Duration, tokens, out float64) time.Duration {
	now := l.start + int64(t)
	var w time.Duration
	if r := l.rpm(now); r > 0 {
		w = l.req.wait(l, now, idealRule{r, l.lim.Burst}, 1)
	}
	if l.lim.OutputTPM <= 0 {
		tokens += out
	}
	if l.lim.TPM > 0 {
		w = max(w, l.tok.wait(l, now, idealRule{l.lim.TPM, l.lim.TokenBurst}, tokens))
	}
	if l.lim.OutputTPM > 0 {
		w = max(w, l.out.wait(l, now, idealRule{l.lim.OutputTPM, l.lim.OutputTokenBurst}, out))
	}
	return w
}

// take spends a request at t that wait admitted; weight is its expected
// success, counted towards a dynamic limit.
func (l *idealLimiter) take(t time.Duration, weight, tokens, out float64) {
	now := l.start + int64(t)
	if r := l.rpm(now); r > 0 {
		l.req.take(l, now, idealRule{r, l.lim.Burst}, 1)
	}
	if l.lim.OutputTPM <= 0 {
		tokens += out
	}
	if l.lim.TPM > 0 {
		l.tok.take(l, now, idealRule{l.lim.TPM, l.lim.TokenBurst}, tokens)
	}
	if l.lim.OutputTPM > 0 {
		l.out.take(l, now, idealRule{l.lim.OutputTPM, l.lim.OutputTokenBurst}, out)
	}
	if l.lim.Dynamic {
		idx := now / int64(time.Minute)
		i := idx % 60
		if l.mins[i] != idx {
			l.mins[i], l.succ[i] = idx, 0
		}
		l.succ[i] += weight
		if !l.anyTaken {
			l.first, l.anyTaken = now, true
		}
		l.total += weight
	}
}

// size is a bucket's capacity under r.
func (r idealRule) size() float64 {
	if r.burst > 0 {
		return r.burst
	}
	return max(r.perMinute/60, 1)
}

// nginx's figures under r: the rate in thousandths a second and the burst
// in thousandths, both whole numbers.
func (r idealRule) nginx() (rate, burst int64) {
	rate = max(int64(math.Floor(r.perMinute*1000/60+idealEpsilon)), 1)
	burst = max(int64(math.Round((r.size()-1)*1000)), 0)
	return rate, burst
}

// quota is what one window of l allows under r.
func (r idealRule) quota(l *idealLimiter) float64 {
	return r.perMinute * float64(l.window()) / float64(time.Minute)
}

// wait is how long after now need units have to wait under r.
func (c *idealCount) wait(l *idealLimiter, now int64, r idealRule, need float64) time.Duration {
	switch l.alg {
	case LeakyBucket:
		if !c.taken {
			return 0 // nginx passes a key's first request whatever its size
		}
		rate, burst := r.nginx()
		cost := int64(math.Round(need * 1000))
		over := int64(c.left) + cost - burst // what the refill has to cover
		if rate*(now/int64(time.Millisecond)-c.at)/1000 >= over {
			return 0
		}
		// The first millisecond at which it does.
		d := c.at + (over*1000+rate-1)/rate
		return time.Duration(d*int64(time.Millisecond) - now)
	case SlidingLog:
		w, quota := l.window(), r.quota(l)
		need = min(need, quota)
		var inWindow float64
		for _, e := range c.log {
			if e.at > now-w {
				inWindow += e.units
			}
		}
		for _, e := range c.log {
			if inWindow+need <= quota+idealEpsilon {
				break
			}
			if e.at > now-w { // the oldest still in the window leaves at e.at+w
				inWindow -= e.units
				if inWindow+need <= quota+idealEpsilon {
					return time.Duration(e.at + w - now)
				}
			}
		}
		return 0
	case FixedWindow:
		w, quota := l.window(), r.quota(l)
		spent, end := c.spent, int64(0)
		if l.lim.FromFirstRequest {
			end = c.opened + w
			if !c.taken || now >= end {
				spent = 0
			}
		} else {
			end = (now/w + 1) * w
			if !c.taken || now/w != c.win {
				spent = 0
			}
		}
		if spent == 0 || spent+need <= quota+idealEpsilon {
			return 0
		}
		return time.Duration(end - now)
	}
	lv := c.bucket(now, r)
	need = min(need, r.size())
	if lv+idealEpsilon >= need {
		return 0
	}
	return max(time.Duration(math.Ceil((need-lv)/(r.perMinute/60)*1e9)), 1)
}

// bucket is what a TokenBucket holds at now under r.
func (c *idealCount) bucket(now int64, r idealRule) float64 {
	if !c.taken {
		return r.size()
	}
	return min(c.left+r.perMinute/60*float64(now-c.at)/1e9, r.size())
}

// take spends need units at now, which wait admitted.
func (c *idealCount) take(l *idealLimiter, now int64, r idealRule, need float64) {
	switch l.alg {
	case LeakyBucket:
		rate, _ := r.nginx()
		ms := now / int64(time.Millisecond)
		var excess int64 // a first request leaves none
		if c.taken {
			excess = max(int64(c.left)-rate*(ms-c.at)/1000+int64(math.Round(need*1000)), 0)
		}
		c.left, c.at = float64(excess), ms
	case SlidingLog:
		c.log = append(c.log, logEntry{at: now, units: need})
		for len(c.log) > 0 && c.log[0].at <= now-2*l.window() { // long gone
			c.log = c.log[1:]
		}
	case FixedWindow:
		w := l.window()
		if l.lim.FromFirstRequest {
			if !c.taken || now >= c.opened+w {
				c.opened, c.spent = now, 0
			}
		} else if !c.taken || now/w != c.win {
			c.win, c.spent = now/w, 0
		}
		c.spent += need
	default:
		c.left = max(c.bucket(now, r)-min(need, r.size()), 0)
		c.at = now
	}
	c.taken = true
}
