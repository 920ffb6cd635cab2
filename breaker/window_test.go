package breaker_test

import (
	"errors"
	"math"
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

// statusesFrom answers each request with the next status of a script.
func statusesFrom(statuses *[]int) http.RoundTripper {
	return transport.Func(func(*http.Request) (*http.Response, error) {
		status := http.StatusServiceUnavailable // once the script is over
		if len(*statuses) > 0 {
			status = (*statuses)[0]
			*statuses = (*statuses)[1:]
		}
		return &http.Response{StatusCode: status, Header: http.Header{}, Body: http.NoBody}, nil
	})
}

func sendM(t *testing.T, rt http.RoundTripper) error {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://api.test/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	return err
}

// TestAHugeSamplingWindowWorks: a window as long as a Duration holds (the
// natural way to say "never forget") must neither panic nor stop the
// breaker from tripping.
func TestAHugeSamplingWindowWorks(t *testing.T) {
	for _, window := range []time.Duration{math.MaxInt64, math.MaxInt64 / 10 * 9, math.MaxInt64 / 20 * 19, 200 * 365 * 24 * time.Hour} {
		t.Run(window.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				statuses := []int{200, 503, 503, 503, 503, 503}
				rt := breaker.New(breaker.WithSamplingWindow(window))(statusesFrom(&statuses))
				for range 6 {
					time.Sleep(time.Hour)
					require.NotPanics(t, func() { _ = sendM(t, rt) })
				}
				assert.ErrorIs(t, sendM(t, rt), breaker.ErrOpen, "five failures in a row trip it")
			})
		})
	}
}

// TestANanosecondWindowRolls: the shortest window there is must still be
// a rolling one, as gobreaker keeps it with two buckets or more, and not
// gobreaker's fixed window (one bucket), which starts again at the first
// request after it ends and which the successes counted beside gobreaker
// do not follow. A success and a failure at one instant, a failure the
// next nanosecond: with a fixed window from the first, three requests of
// which two failed trip a 50% rule over at least three; with a rolling
// window of a nanosecond or two the success and the failure of the first
// instant have left it or not, but the breaker decides as gobreaker does.
func TestANanosecondWindowRolls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		trip := func(c gobreaker.Counts) bool {
			done := c.TotalSuccesses + c.TotalFailures
			return done >= 3 && float64(c.TotalFailures) >= 0.5*float64(done)
		}
		statuses := []int{200, 503, 503}
		rt := breaker.New(breaker.WithSamplingWindow(time.Nanosecond), breaker.WithConsecutiveFailures(0),
			breaker.WithFailureRatio(0.5, 3))(statusesFrom(&statuses))
		// gobreaker told of each request, with the window the breaker
		// keeps.
		ref := gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Interval: 2 * time.Nanosecond, BucketPeriod: time.Nanosecond, ReadyToTrip: trip,
		})
		tell := func(out error) {
			done, err := ref.Allow()
			require.NoError(t, err)
			done(out)
		}
		time.Sleep(5 * time.Nanosecond)
		require.NoError(t, sendM(t, rt))
		tell(nil)
		require.NoError(t, sendM(t, rt))
		tell(errors.New("503"))
		time.Sleep(time.Nanosecond)
		require.NoError(t, sendM(t, rt))
		tell(errors.New("503"))
		assert.Equal(t, ref.State() == gobreaker.StateOpen, errors.Is(sendM(t, rt), breaker.ErrOpen),
			"open after the third request, as gobreaker with a rolling window is")
	})
}
