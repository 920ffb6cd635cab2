package breaker_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// TestDecidesAsGobreakerToldOfEveryRequest holds the breaker, which tells
// gobreaker of a closed breaker's successes only when they can change a
// decision, to the decisions of a gobreaker told of every request: one at
// a time, at random instants, failing at a share that changes every few
// hundred requests, each request's refusal or admission and each change of
// state must be the same. The rules vary: five in a row, a ratio alone,
// both; one probe and three.
func TestDecidesAsGobreakerToldOfEveryRequest(t *testing.T) {
	for _, r := range []tripRules{
		{inARow: 5, ratio: 0.5, least: 20, probes: 3},
		{inARow: 0, ratio: 0.5, least: 20, probes: 3},
		{inARow: 0, ratio: 0.2, least: 10, probes: 1},
		{inARow: 3, ratio: 0, probes: 2},
	} {
		for seed := range uint64(4) {
			t.Run(fmt.Sprintf("%+v/seed=%d", r, seed), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					const (
						window  = 30 * time.Second
						timeout = 10 * time.Second
					)
					var want, got []string
					ref := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
						MaxRequests:  r.probes,
						Interval:     window,
						BucketPeriod: window / 10,
						Timeout:      timeout,
						ReadyToTrip:  r.trip,
						OnStateChange: func(_ string, from, to gobreaker.State) {
							want = append(want, fmt.Sprintf("%v %v->%v", time.Now().UnixNano(), from, to))
						},
					})

					fail := false
					inner := transport.Func(func(*http.Request) (*http.Response, error) {
						status := http.StatusOK
						if fail {
							status = http.StatusServiceUnavailable
						}
						return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody}, nil
					})
					rt := breaker.New(r.options(window, timeout, func(ev transport.Event) {
						got = append(got, fmt.Sprintf("%v %v->%v", time.Now().UnixNano(), ev.From, ev.To))
					})...)(inner)

					rng := rand.New(rand.NewPCG(seed, 7))
					share := 0.0
					var refusedWant, refusedGot int
					for i := range 20_000 {
						if i%300 == 0 {
							share = []float64{0, 0.05, 0.3, 0.55, 0.9, 1}[rng.IntN(6)]
						}
						// Gaps of any nanosecond count up to 2.5 s, so that a
						// request meets an open period's end or a bucket's
						// edge only by chance, not on every run.
						time.Sleep(time.Duration(rng.Int64N(int64(2500 * time.Millisecond))))
						fail = rng.Float64() < share

						var wantOK bool
						if done, err := ref.Allow(); err == nil {
							wantOK = true
							if fail {
								done(errors.New("503"))
							} else {
								done(nil)
							}
						}
						req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/chat/completions",
							strings.NewReader(`{"model":"m"}`))
						require.NoError(t, err)
						resp, err := rt.RoundTrip(req)
						gotOK := err == nil
						if gotOK {
							_ = resp.Body.Close()
						} else {
							require.ErrorIs(t, err, breaker.ErrOpen)
							refusedGot++
						}
						if !wantOK {
							refusedWant++
						}
						require.Equal(t, wantOK, gotOK, "request %d: admitted by gobreaker told of every request, and by the breaker", i)
					}
					assert.Equal(t, want, got, "changes of state")
					assert.Equal(t, refusedWant, refusedGot)
					// The run must have tripped, probed and closed, or it
					// compared nothing of interest.
					assert.Greater(t, len(want), 6, "changes of state")
					assert.Greater(t, refusedWant, 100)
					t.Logf("%d changes of state, %d of 20000 requests refused", len(want), refusedWant)
				})
			})
		}
	}
}

// tripRules are the rules a differential test gives both the breaker and
// the gobreaker it is held to: failures in a row, a failure ratio over at
// least some requests (off when ratio is 0), and the half-open probes.
type tripRules struct {
	inARow uint32
	ratio  float64
	least  uint32
	probes uint32
}

// trip is the rules as gobreaker's ReadyToTrip.
func (r tripRules) trip(c gobreaker.Counts) bool {
	if r.inARow > 0 && c.ConsecutiveFailures >= r.inARow {
		return true
	}
	done := c.TotalSuccesses + c.TotalFailures
	return r.ratio > 0 && done >= r.least && float64(c.TotalFailures) >= r.ratio*float64(done)
}

// options are the rules as the breaker's options, with its sampling window
// and timeout, and a hook that hears its changes of state.
func (r tripRules) options(window, timeout time.Duration, events transport.EventFunc) []breaker.Option {
	opts := []breaker.Option{
		breaker.WithConsecutiveFailures(r.inARow),
		breaker.WithSamplingWindow(window),
		breaker.WithTimeout(timeout),
		breaker.WithHalfOpenProbes(r.probes),
		breaker.WithEvents(events),
	}
	if r.ratio > 0 {
		return append(opts, breaker.WithFailureRatio(r.ratio, r.least))
	}
	return append(opts, breaker.WithFailureRatio(0, 0))
}
