package reallimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/compare/reallimit"
)

func TestOracle(t *testing.T) {
	tests := []struct {
		limit reallimit.Limiter
		n     int
		want  time.Duration
	}{
		// nginx, no burst: one request every 1/rate after the first.
		{reallimit.LeakyBucket{PerSecond: 10}, 0, 0},
		{reallimit.LeakyBucket{PerSecond: 10}, 1, 0},
		{reallimit.LeakyBucket{PerSecond: 10}, 2, 100 * time.Millisecond},
		{reallimit.LeakyBucket{PerSecond: 10}, 200, 19900 * time.Millisecond},
		// burst b nodelay: b+1 at once, then the rate.
		{reallimit.LeakyBucket{PerSecond: 10, Burst: 10}, 11, 0},
		{reallimit.LeakyBucket{PerSecond: 10, Burst: 10}, 12, 100 * time.Millisecond},
		{reallimit.LeakyBucket{PerSecond: 10, Burst: 10}, 200, 18900 * time.Millisecond},
		// nginx counts in whole milliseconds: 3/s admits at 334 ms, not 333.3.
		{reallimit.LeakyBucket{PerSecond: 3}, 2, 334 * time.Millisecond},
		// fixed windows opened by the first request: full windows, then the rest.
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 1, 0},
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 100, 0},
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 101, 10 * time.Second},
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 250, 20 * time.Second},
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 300, 20 * time.Second},
		{reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}, 301, 30 * time.Second},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, reallimit.Oracle(tt.limit, tt.n), "%v, %d requests", tt.limit, tt.n)
	}
	assert.InDelta(t, 10, reallimit.FixedWindow{Quota: 100, Window: 10 * time.Second}.Rate(), 1e-9)
	assert.InDelta(t, 10, reallimit.LeakyBucket{PerSecond: 10, Burst: 10}.Rate(), 1e-9)
}

func TestResultOracleAddsOneRoundTrip(t *testing.T) {
	r := reallimit.Result{Requests: 200, RTT: 3 * time.Millisecond, Time: 21 * time.Second}
	assert.Equal(t, 19903*time.Millisecond, r.Oracle(reallimit.NginxNoBurst))
	row := reallimit.Row{Limit: reallimit.NginxNoBurst, Result: r}
	assert.InDelta(t, 21.0/19.903, row.Ratio(), 1e-9)
}

func ExampleOracle() {
	// 200 requests against nginx at 10 r/s with burst=10 nodelay, and 250
	// against express-rate-limit's 100 per 10 s.
	fmt.Println(reallimit.Oracle(reallimit.NginxBurst, 200))
	fmt.Println(reallimit.Oracle(reallimit.NginxNoBurst, 200))
	fmt.Println(reallimit.Oracle(reallimit.ExpressLimit, 250))
	// Output:
	// 18.9s
	// 19.9s
	// 20s
}
