package bucket_test

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// matrixStack is retry around bucket.Limit, the bucket made with what the
// run tells it: the limit, twice it, or nothing. Against Together's
// dynamic limit the Limit knows Together's published rule, as the
// together package's preset does (WithUseBasedLimit); elsewhere it knows
// nothing of the server.
func matrixStack(told conformance.Told) conformance.Stack {
	return conformance.Stack{Name: "retry+bucket", Wrap: func(next http.RoundTripper) http.RoundTripper {
		rate := bucket.Rate{}
		if told.Known() {
			rate = bucket.PerMinute(told.RPM)
		}
		var opts []bucket.LimitOption
		if strings.HasPrefix(told.Case, "dynamic") {
			opts = append(opts, bucket.WithUseBasedLimit(2, time.Hour, bucket.PerMinute(60)))
		}
		return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate), opts...))
	}}
}

// TestMatrix holds bucket.Limit to the goal of every server model of
// conformance.Matrix, told the right limit, twice it and nothing.
func TestMatrix(t *testing.T) {
	cases := conformance.Matrix()
	if run := os.Getenv("STEADY_MATRIX"); run != "" {
		var keep []conformance.MatrixCase
		for _, c := range cases {
			if strings.Contains(c.Name, run) {
				keep = append(keep, c)
			}
		}
		cases = keep
	}
	results := conformance.RunMatrix(t, cases, matrixStack)
	conformance.HoldMatrix(t, results, shortfalls)
}

// shortfalls are the runs that miss their case's goal today, each held to
// a bound a little above what it does, by case name and telling. None
// does: every run is held to its case's goal.
var shortfalls = map[string]conformance.Goal{}
