package conformance

import (
	"bytes"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/steadyapi/steady/transport"
)

// BenchmarkScenarioLeast measures the oracle that computes the yardstick
// of every run: every scenario and every case of the matrix.
func BenchmarkScenarioLeast(b *testing.B) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	all := Scenarios()
	for _, c := range Matrix() {
		all = append(all, c.Scenario)
	}
	for _, s := range all {
		b.Run(s.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = s.Least(start)
			}
		})
	}
}

// BenchmarkNaiveRoundTrip measures the naive port's happy path: a token,
// one attempt, a 200.
func BenchmarkNaiveRoundTrip(b *testing.B) {
	ok := transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}, Request: req}, nil
	})
	rt := NaiveRetry(NewNaiveLimiter(1e15), func() float64 { return 0 })(ok)
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, ScenarioBaseURL+"/chat/completions", bytes.NewReader(body))
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
}
