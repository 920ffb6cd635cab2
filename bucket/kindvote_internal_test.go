package bucket

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestKindVoteWholeSecondResets: a window of 10 s whose resets are whole
// seconds rounded up (express-rate-limit's draft-8 t) names the same end
// to within a second, however far apart the sends. Two sends a second
// apart, each told t=10, voted it a bucket, and the limiter then held the
// next window's count to its own slow rate: against express it spent 48 of
// a window's 100 and needed a window more (51 s for 40). They do not vote;
// sends seconds apart vote it a window. A bucket whose whole-second resets
// move as far as its sends is still voted a bucket, and a per-second
// bucket's resets of 1 s vote as before.
func TestKindVoteWholeSecondResets(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	ceilSec := func(d time.Duration) time.Duration { return time.Duration(math.Ceil(d.Seconds())) * time.Second }
	window := func(sent time.Time) time.Duration { return ceilSec(at(10.04).Sub(sent)) }

	var v kindVote
	v.learn(at(0.04), window(at(0.04)))
	v.learn(at(1.05), window(at(1.05)))
	assert.Equal(t, 0, v.kind, "a second apart, a rounded reset says nothing")
	v.learn(at(3.5), window(at(3.5)))
	v.learn(at(6.2), window(at(6.2)))
	assert.Positive(t, v.kind, "seconds apart, the same end: a window")

	var b kindVote // a bucket full again 10 s after each send
	for _, s := range []float64{0, 2.5, 5, 7.5} {
		b.learn(at(s), ceilSec(10*time.Second))
	}
	assert.Negative(t, b.kind, "ends that move with the sends: a bucket")

	var p kindVote // a per-second bucket: reset 1 s, sends 0.6 s apart
	for _, s := range []float64{0, 0.6, 1.2, 1.8} {
		p.learn(at(s), time.Second)
	}
	assert.Negative(t, p.kind, "a per-second bucket still votes")
}

// TestKindVoteSlidingLogInUnderTwoSeconds: a sliding log of a minute
// states, on every answer, the time until its newest request leaves it:
// its whole window, 60 s, whatever the send. A key that spent the log in
// under two seconds (600 requests in 1.93 s) had no vote, for resets in
// whole seconds wanted sends two seconds apart; its next answers, a
// minute on, each saying nothing remained for 60 s, were taken for a
// window's and held the key 30 s (the longest pause) every minute: 1.24
// of the least time in about one run in a hundred. Ends that moved more
// than a window's can (a second, and a quarter for the answers' jitter),
// as far as the answers did, vote a bucket.
func TestKindVoteSlidingLogInUnderTwoSeconds(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var v kindVote
	for s := 0.0; s < 1.93; s += 0.01 {
		v.learn(at(s), time.Minute)
	}
	assert.Negative(t, v.kind, "ends that moved as far as the sends, a second and more")

	var w kindVote // sends 1.5 s apart, told a window's rounded-up resets
	w.learn(at(0.2), 10*time.Second)
	w.learn(at(1.7), 9*time.Second)
	assert.Zero(t, w.kind, "ends within a second of one another say nothing yet")

	var j kindVote // a window's answers 1.1 s apart, the first one's way back slow
	j.learn(at(0.2), 10*time.Second)
	j.learn(at(1.3), 10*time.Second)
	assert.Zero(t, j.kind, "ends 1.1 s apart may be a window's, with the answers' jitter")
}
