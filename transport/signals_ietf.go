package transport

import (
	"strings"
	"time"
)

// The IETF RateLimit header fields (draft-ietf-httpapi-ratelimit-headers),
// in the three shapes its drafts gave them, all of which servers send:
//
//	draft 6 and earlier   RateLimit-Limit: 100
//	                      RateLimit-Remaining: 99
//	                      RateLimit-Reset: 10
//	                      RateLimit-Policy: 100;w=10, 1000;w=3600
//	draft 7               RateLimit: limit=100, remaining=99, reset=10
//	                      RateLimit-Policy: 100;w=10
//	draft 8 and later     RateLimit-Policy: "burst";q=100;w=10, "day";q=1000;w=86400
//	                      RateLimit: "burst";r=99;t=10
//
// The earliest drafts listed the policies after the limit itself
// ("RateLimit-Limit: 10, 10;w=1, 50;w=60"), which Envoy's rate-limit filter
// still writes into X-RateLimit-Limit; parseLimitField reads that too.
//
// express-rate-limit writes one of the three for standardHeaders 'draft-6',
// 'draft-7' and 'draft-8' (source/headers.ts of
// github.com/express-rate-limit/express-rate-limit: setDraft6Headers,
// setDraft7Headers, setDraft8Headers). Its draft 8 items put a space after
// each semicolon and carry a partition key ("3-in-10sec"; q=3; w=10;
// pk=:MTJj...:), and two limiters on one route add a field line each
// rather than a member to one line: both are read.
//
// Counts are of quota units, times in seconds. The drafts leave the unit
// unsaid but in a draft 8 policy's "qu" parameter, whose default is
// requests: everything else counts requests, into Signals.Requests.
// Windows in tokens go to Signals.Tokens: the drafts register no such unit,
// but some inference APIs send one (qu="tokens"); a unit ending in
// "-tokens" ("input-tokens") is read as tokens too. Windows in any other
// unit ("content-bytes", "concurrent-requests") say nothing of a rate of
// requests or tokens, and are left out.

// maxRateItems bounds the items read from one RateLimit or RateLimit-Policy
// field. Each RateLimit item is matched to its policy by a walk over the
// policies, so the work grows as the product of the two counts: a server
// sends one to three of each, and no answer may cost a client more than a
// few hundred item reads.
const maxRateItems = 16

// longestWindow is the longest policy window steady reads: a quota that
// renews less than once a year is not one a client paces itself by.
const longestWindow = 366 * 24 * time.Hour

// ietfFields are the IETF RateLimit fields of one response, gathered in
// ParseSignals' one pass over the keys and read when all are known, since
// they refer to one another (a RateLimit item names its policy).
type ietfFields struct {
	state  []string // RateLimit: a draft 7 Dictionary or a draft 8 List, a value per field line
	policy []string // RateLimit-Policy, a value per field line
	// RateLimit-Limit, -Remaining and -Reset of draft 6 and earlier.
	limit, remaining, reset string
}

func (f *ietfFields) present() bool {
	return len(f.state) > 0 || len(f.policy) > 0 || f.limit != "" || f.remaining != "" || f.reset != ""
}

// unit is the kind of quota unit a window counts.
type unit int8

const (
	unitRequests unit = iota
	unitTokens
	unitOther
)

// unitOf reads a policy's "qu" parameter; an absent one means requests.
func unitOf(qu sfItem) unit {
	if qu.kind == sfInvalid {
		return unitRequests
	}
	u, ok := qu.text()
	switch {
	case !ok:
		return unitOther
	case strings.EqualFold(u, "requests"), strings.EqualFold(u, "request"):
		return unitRequests
	case strings.EqualFold(u, "tokens"):
		return unitTokens
	case len(u) > len("-tokens") && strings.EqualFold(u[len(u)-len("-tokens"):], "-tokens"):
		return unitTokens
	}
	return unitOther
}

// tightest keeps, of the windows offered to it, the one that binds.
//
// Every request counts against every window of its unit, so the window
// that runs out first is the one with the fewest units remaining; what a
// limiter needs is that count and the time until that window refills. Of
// two windows with as few units left, the one that refills later binds: it
// holds the client back longer. A window with a count binds before one
// without (a policy alone, or a reset alone). Of windows with no count, the
// one that allows the lowest rate (Limit over Period) binds, for that is
// the rate the client can keep up. The drafts ask a server with several
// windows that reports one to report the one with the fewest remaining
// (section "Server Behavior"); this is the same rule, for servers that
// report them all.
type tightest struct {
	w   Window
	set bool
}

func (t *tightest) offer(w Window) {
	if w.Known() && (!t.set || binds(w, t.w)) {
		t.w, t.set = w, true
	}
}

// binds reports whether a binds before b.
func binds(a, b Window) bool {
	switch {
	case (a.Remaining >= 0) != (b.Remaining >= 0):
		return a.Remaining >= 0
	case a.Remaining != b.Remaining:
		return a.Remaining < b.Remaining
	case a.Reset != b.Reset:
		return a.Reset > b.Reset
	case a.Limit >= 0 && b.Limit >= 0 && a.Period > 0 && b.Period > 0:
		// a.Limit/a.Period < b.Limit/b.Period, without dividing.
		return a.Limit*float64(b.Period) < b.Limit*float64(a.Period)
	}
	return a.Limit >= 0 && (b.Limit < 0 || a.Limit < b.Limit)
}

// read folds the windows of the IETF fields into s: for each unit, the one
// that binds (see tightest), merged with what the other dialects said of
// that unit's window as Window.fold does.
func (f *ietfFields) read(s *Signals, now time.Time) {
	// Malformed fields are ignored, as the drafts ask: a policy field that
	// breaks the syntax anywhere names no policy.
	policies := f.policy
	if len(policies) > 0 && !(sfList{lines: policies}).valid() {
		policies = nil
	}
	var requests, tokens tightest

	if f.limit != "" || f.remaining != "" || f.reset != "" {
		w := Window{Limit: -1, Remaining: -1, Reset: -1, Period: -1}
		if f.limit != "" {
			w.Limit, w.Period = parseLimitField(f.limit)
		}
		if n, ok := parseNumber(f.remaining); ok && n >= 0 {
			w.Remaining = n
		}
		if f.reset != "" {
			w.Reset = ParseReset(f.reset, now)
		}
		if w.Limit >= 0 && w.Period < 0 {
			w.Period = numberedPolicyWindow(policies, w.Limit)
		}
		requests.offer(w)
	}

	if len(f.state) > 0 {
		if (sfList{lines: f.state}).valid() {
			f.readNamed(policies, now, &requests, &tokens)
		} else {
			// Not a List: draft 7's Dictionary, a window per field line (two
			// limiters that each set the field report two windows).
			for _, line := range f.state {
				d, ok := parseRateDict(line)
				if !ok {
					continue
				}
				w := Window{Limit: d.limit.nonNegative(), Remaining: d.remaining.nonNegative(), Reset: resetOf(d.reset, now), Period: -1}
				if w.Limit >= 0 {
					w.Period = numberedPolicyWindow(policies, w.Limit)
				}
				requests.offer(w)
			}
		}
	}

	// A unit with no current window still learns its quota from the
	// policies, if they name one.
	if !requests.set || !tokens.set {
		var policyRequests, policyTokens tightest
		l := sfList{lines: policies}
		var prm rateParams
		for n := 0; n < maxRateItems; n++ {
			it, ok := l.next(&prm)
			if !ok {
				break
			}
			w := Window{Limit: prm.q.nonNegative(), Remaining: -1, Reset: -1, Period: windowOf(prm.w)}
			u := unitOf(prm.qu)
			switch _, named := it.text(); {
			case it.kind == sfNumber: // a draft 7 or earlier policy: the quota is the item
				w.Limit, u = it.nonNegative(), unitRequests
			case !named:
				continue // an inner list, or a bare item no draft uses
			}
			switch u {
			case unitRequests:
				policyRequests.offer(w)
			case unitTokens:
				policyTokens.offer(w)
			}
		}
		if !requests.set {
			requests = policyRequests
		}
		if !tokens.set {
			tokens = policyTokens
		}
	}

	if requests.set {
		s.Requests.fold(requests.w)
	}
	if tokens.set {
		s.Tokens.fold(tokens.w)
	}
}

// readNamed reads the items of a draft 8 RateLimit field, each matched by
// name to its policy, which gives its quota, window and unit. An item whose
// policy is not sent counts requests, as a policy without a unit does.
func (f *ietfFields) readNamed(policies []string, now time.Time, requests, tokens *tightest) {
	l := sfList{lines: f.state}
	var prm rateParams
	for n := 0; n < maxRateItems; n++ {
		it, ok := l.next(&prm)
		if !ok {
			return
		}
		name, named := it.text()
		if !named {
			continue
		}
		w := Window{Limit: -1, Remaining: prm.r.nonNegative(), Reset: resetOf(prm.t, now), Period: -1}
		u := unitRequests
		if pol, ok := namedPolicy(policies, name); ok {
			w.Limit, w.Period, u = pol.q.nonNegative(), windowOf(pol.w), unitOf(pol.qu)
		}
		switch u {
		case unitRequests:
			requests.offer(w)
		case unitTokens:
			tokens.offer(w)
		}
	}
}

// namedPolicy finds the parameters of the policy called name in a (valid)
// RateLimit-Policy field. Names match whether written as Strings or Tokens.
func namedPolicy(policies []string, name string) (rateParams, bool) {
	l := sfList{lines: policies}
	var prm rateParams
	for n := 0; n < maxRateItems; n++ {
		it, ok := l.next(&prm)
		if !ok {
			break
		}
		if s, named := it.text(); named && s == name {
			return prm, true
		}
	}
	return rateParams{}, false
}

// numberedPolicyWindow finds the window of the limit of draft 7 and
// earlier, whose policies are numbers ("100;w=10") and are matched to the
// limit by their quota. Of several policies with that quota, the longest
// window binds: the same quota over a longer time is the lower rate. It
// returns -1 when no policy matches.
func numberedPolicyWindow(policies []string, limit float64) time.Duration {
	window := time.Duration(-1)
	l := sfList{lines: policies}
	var prm rateParams
	for n := 0; n < maxRateItems; n++ {
		it, ok := l.next(&prm)
		if !ok {
			break
		}
		if it.kind == sfNumber && it.num == limit {
			window = max(window, windowOf(prm.w))
		}
	}
	return window
}

// parseLimitField reads a limit: a number, or the list of the earliest
// drafts (and of Envoy's X-RateLimit-Limit), whose first member is the
// limit and whose others are the policies ("10, 10;w=1, 50;w=60"), the
// window of the limit being that of the policies with its quota, the
// longest if several. It returns -1 for what it cannot read.
func parseLimitField(val string) (limit float64, window time.Duration) {
	if n, ok := parseNumber(val); ok {
		if n < 0 {
			return -1, -1
		}
		return n, -1
	}
	l := oneLine(val)
	if !l.valid() {
		return -1, -1
	}
	limit, window = -1, -1
	var prm rateParams
	for n := 0; n < maxRateItems; n++ {
		it, ok := l.next(&prm)
		if !ok {
			break
		}
		if n == 0 {
			if limit = it.nonNegative(); limit < 0 {
				return -1, -1
			}
		}
		if it.kind == sfNumber && it.num == limit {
			window = max(window, windowOf(prm.w))
		}
	}
	return limit, window
}

// windowOf reads a policy's "w": whole or fractional seconds, more than 0
// and at most longestWindow; anything else is -1. A window of 0 is what
// servers write for limits that are not rates, such as concurrency.
func windowOf(w sfItem) time.Duration {
	f := w.nonNegative()
	if f <= 0 || f > longestWindow.Seconds() {
		return -1
	}
	return time.Duration(f * float64(time.Second))
}

// resetOf reads a reset given as a number ("t", "reset"): seconds, or a
// Unix time, as ParseReset reads them.
func resetOf(t sfItem, now time.Time) time.Duration {
	if f := t.nonNegative(); f >= 0 {
		return resetFromNumber(f, now)
	}
	return -1
}
