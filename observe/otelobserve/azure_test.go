package otelobserve_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/steadyapi/steady/observe/otelobserve"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/transport"
)

// Azure OpenAI keeps a limiter per deployment; its events name the
// deployment in Key and no Model. Each limiter's rate must stay a series
// of its own in steady.limiter.rate, as the gauge is "a limiter's rate, as
// last set".
func TestAzureDeploymentsRatesAreSeriesApart(t *testing.T) {
	hook, collect := newHook(t)
	var mu sync.Mutex
	keys := map[string]float64{}
	base := transport.Func(func(req *http.Request) (*http.Response, error) {
		status := http.StatusOK
		if strings.Contains(req.URL.Path, "/deployments/busy") {
			status = http.StatusTooManyRequests
		}
		return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {"0"}}, Body: http.NoBody, Request: req}, nil
	})
	rt := openai.NewAzureTransport(base, "https://res.openai.azure.com",
		openai.WithAPIKey("k"), openai.WithMaxRetries(0), openai.WithRate(openai.RouteChat, 600),
		openai.WithEvents(hook),
		openai.WithEvents(func(e transport.Event) {
			if e.Kind == transport.EventRateChanged && e.Reason == "requests" {
				mu.Lock()
				keys[e.Key] = e.Rate
				mu.Unlock()
			}
		}))
	for _, dep := range []string{"busy", "busy2"} {
		path := "/openai/deployments/" + dep + "/chat/completions?api-version=2024-10-21"
		req, err := http.NewRequest(http.MethodPost, "https://res.openai.azure.com"+path, strings.NewReader(`{"messages":[]}`))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
	}
	t.Logf("rates by limiter key, from the events: %v", keys)
	require.GreaterOrEqual(t, len(keys), 2, "two limiters changed their rate")
	g, ok := collect()[otelobserve.MetricRate].(metricdata.Gauge[float64])
	require.True(t, ok)
	for _, dp := range g.DataPoints {
		t.Logf("gauge point %s = %g", encode(dp.Attributes), dp.Value)
	}
	assert.Len(t, g.DataPoints, len(keys), "one series per limiter")
}
