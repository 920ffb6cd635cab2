package together_test

import (
	"net/http"
	"testing"

	"github.com/steadyapi/steady/internal/limitreq"
	"github.com/steadyapi/steady/together"
)

// TestAgainstASimulatedNginx holds the preset to the goals of the real
// nginx cases (compare/reallimit) on a model of limit_req with few
// callers and loopback's latency (see bucket's test of the same name).
func TestAgainstASimulatedNginx(t *testing.T) {
	limitreq.HoldToGoals(t, func(told float64) func(http.RoundTripper) http.RoundTripper {
		return func(next http.RoundTripper) http.RoundTripper {
			return together.NewTransport(next, together.WithBaseURL("http://limitreq.test"),
				together.WithRate(together.RouteChat, 600*told))
		}
	})
}

// TestOnALoadedMachine holds the preset to the real nginx runs' bounds on
// a loaded machine (see bucket's test of the same name).
func TestOnALoadedMachine(t *testing.T) {
	limitreq.HoldToBounds(t, limitreq.Loaded, 8, func(told float64) func(http.RoundTripper) http.RoundTripper {
		return func(next http.RoundTripper) http.RoundTripper {
			return together.NewTransport(next, together.WithBaseURL("http://limitreq.test"),
				together.WithRate(together.RouteChat, 600*told))
		}
	})
}
