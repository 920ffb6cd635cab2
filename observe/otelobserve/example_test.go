package otelobserve_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/steadyapi/steady/observe/otelobserve"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// A retry decorator recording into the OpenTelemetry SDK. A ManualReader
// stands in for an exporter (Prometheus's, OTLP's) to print what was
// recorded: one request, answered 429 and then 200 after one retry.
func Example() {
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer provider.Shutdown(context.Background())
	events, err := otelobserve.New(provider)
	if err != nil {
		panic(err)
	}

	calls := 0
	server := transport.Func(func(req *http.Request) (*http.Response, error) {
		calls++
		if calls == 1 {
			return &http.Response{StatusCode: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"0"}},
				Body: http.NoBody, Request: req}, nil
		}
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	client := &http.Client{Transport: transport.Chain(server, retry.New(
		retry.WithEvents(events),
		retry.WithRand(func(int64) int64 { return 0 }), // no jitter, for the example
	))}
	resp, err := client.Post("https://api.together.xyz/v1/embeddings", "application/json", http.NoBody)
	if err != nil {
		panic(err)
	}
	resp.Body.Close()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		panic(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} %d", m.Name, encode(dp.Attributes), dp.Value))
				}
			case metricdata.Histogram[float64]:
				for _, dp := range data.DataPoints {
					lines = append(lines, fmt.Sprintf("%s{%s} count=%d sum=%g", m.Name, encode(dp.Attributes), dp.Count, dp.Sum))
				}
			}
		}
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// steady.requests{http.response.status_code=200,steady.endpoint=embeddings} 1
	// steady.retries{http.response.status_code=429,steady.endpoint=embeddings} 1
	// steady.wait.duration{steady.endpoint=embeddings,steady.wait.cause=retry} count=1 sum=0
}

func encode(s attribute.Set) string { return s.Encoded(attribute.DefaultEncoder()) }
