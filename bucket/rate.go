package bucket

import (
	"math"
	"strconv"
	"time"
)

// Rate is how fast a bucket refills: Tokens every Per. A token is whatever
// the caller counts: a request, or a token of text.
//
// The zero Rate, or any rate that is not a positive finite number of tokens
// per second, means the rate is not known: a bucket made with it starts at
// one token a second, which every provider allows, and [Limit] finds the
// real rate with a slow start.
type Rate struct {
	Tokens float64       // tokens added every Per
	Per    time.Duration // the period; 0 means one second
}

// PerSecond is a rate of n tokens a second.
func PerSecond(n float64) Rate { return Rate{Tokens: n, Per: time.Second} }

// PerMinute is a rate of n tokens a minute, the unit providers publish
// their limits in (600 RPM is PerMinute(600)).
func PerMinute(n float64) Rate { return Rate{Tokens: n, Per: time.Minute} }

// Every is a rate of one token every d.
func Every(d time.Duration) Rate { return Rate{Tokens: 1, Per: d} }

// PerSecond reports the rate in tokens a second; 0 when the rate is unknown.
func (r Rate) PerSecond() float64 {
	per := r.Per
	if per == 0 {
		per = time.Second
	}
	if per < 0 || !(r.Tokens > 0) || math.IsInf(r.Tokens, 0) {
		return 0
	}
	return r.Tokens / per.Seconds()
}

// Known reports whether r is a usable rate: a positive, finite number of
// tokens in a positive period.
func (r Rate) Known() bool {
	s := r.PerSecond()
	return s > 0 && !math.IsInf(s, 0)
}

// String formats r as providers write limits: "600/min", "10/s", "1/2s".
func (r Rate) String() string {
	if !r.Known() {
		return "unknown"
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
