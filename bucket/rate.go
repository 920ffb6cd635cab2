package bucket

import (
	"math"
	"strconv"
	"time"
)

// Rate is how fast a bucket refills: Tokens every Per. A token is whatever
// the caller counts: a request, or a token of text.
//
// The zero Rate, or any rate that is not a positive number of tokens per
// second, means the rate is not known: a bucket made with it starts at one
// token a second, which every provider allows, and [Limit] finds the real
// rate with a slow start. An infinite number of tokens (see [Every]) is
// the infinite rate: no limit. A rate slower than one token every
// [MaxInterval] is taken as one token every MaxInterval.
type Rate struct {
	Tokens float64       // tokens added every Per
	Per    time.Duration // the period; 0 means one second
}

// MaxInterval is the longest a bucket takes to refill one token: a slower
// rate (a limit of 1e-12 tokens a second) refills one token every
// MaxInterval instead. A bucket counts time in float64 nanoseconds, which
// are exact up to 2^53 ns (104 days), so the time of one token stays exact
// and far within what a timer can wait; no API's limit is that slow.
const MaxInterval = 100 * 24 * time.Hour

// PerSecond is a rate of n tokens a second.
func PerSecond(n float64) Rate { return Rate{Tokens: n, Per: time.Second} }

// PerMinute is a rate of n tokens a minute, the unit providers publish
// their limits in (600 RPM is PerMinute(600)).
func PerMinute(n float64) Rate { return Rate{Tokens: n, Per: time.Minute} }

// Every is a rate of one token every d. As in golang.org/x/time/rate, a d
// of zero or less is the infinite rate: a bucket made with it grants every
// wait at once (pauses and the server's windows still hold it).
func Every(d time.Duration) Rate {
	if d <= 0 {
		return Rate{Tokens: math.Inf(1), Per: time.Second}
	}
	return Rate{Tokens: 1, Per: d}
}

// PerSecond reports the rate in tokens a second: 0 when the rate is
// unknown, +Inf when it is unlimited.
func (r Rate) PerSecond() float64 {
	per := r.Per
	if per == 0 {
		per = time.Second
	}
	if per < 0 || !(r.Tokens > 0) {
		return 0
	}
	return r.Tokens / per.Seconds()
}

// Known reports whether r is a usable rate: a positive number of tokens in
// a positive period, or the infinite rate.
func (r Rate) Known() bool { return r.PerSecond() > 0 }

// Unlimited reports whether r is the infinite rate (see [Every]).
func (r Rate) Unlimited() bool { return math.IsInf(r.PerSecond(), 1) }

// String formats r as providers write limits: "600/min", "10/s", "1/2s";
// "unlimited" for the infinite rate.
func (r Rate) String() string {
	if !r.Known() {
		return "unknown"
	}
	if r.Unlimited() {
		return "unlimited"
	}
	n := strconv.FormatFloat(r.Tokens, 'g', 6, 64)
	switch r.Per {
	case 0, time.Second:
		return n + "/s"
	case time.Minute:
		return n + "/min"
	case time.Hour:
		return n + "/h"
	}
	return n + "/" + r.Per.String()
}

// in expresses tokensPerSecond in the period per.
func in(tokensPerSecond float64, per time.Duration) Rate {
	if per <= 0 {
		per = time.Second
	}
	return Rate{Tokens: tokensPerSecond * per.Seconds(), Per: per}
}

// interval is the time a bucket takes to refill one token, in nanoseconds,
// at a known rate of perSecond tokens a second: 0 for the infinite rate,
// at most MaxInterval.
func interval(perSecond float64) float64 {
	if math.IsInf(perSecond, 1) {
		return 0
	}
	return min(1e9/perSecond, float64(MaxInterval))
}
