package bucket_test

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/bucket"
)

// A count whose reset is a day away (garbage, or a daily window) is obeyed
// no longer than the longest pause, and neither is the rate it names: once
// a 429 lowered the rate, the answers after it raise it back to the
// ceiling, as they would had the day never been named.
func TestALongResetDoesNotHoldTheRateDownAfterA429(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := newScript(func(i int) (int, http.Header) {
			switch i {
			case 0:
				return http.StatusOK, counts("10", "9", "86400")
			case 1:
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
			}
			return http.StatusOK, nil
		})
		b := bucket.New(bucket.PerSecond(10))
		rt := bucket.Limit(b)(srv)
		send(t, rt, 2)
		require.Less(t, b.Rate().PerSecond(), 10.0, "the 429 lowered the rate")
		start := time.Now()
		for time.Since(start) < 5*time.Minute {
			_, err := get(t, rt, context.Background())
			require.NoError(t, err)
		}
		assert.InDelta(t, 10, b.Rate().PerSecond(), 1e-9, "back at the ceiling")
	})
}
