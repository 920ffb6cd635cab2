package otelobserve_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/observe/otelobserve"
	"github.com/steadyapi/steady/observe/slogobserve"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// TestTheAPIKeyNeverLeaves sends requests with an API key through every
// path of the preset (429s, 5xx, resets, hangs past deadlines, a model
// that is not found, fallbacks, breakers, panicking hooks) and looks for
// the key in everything that comes out: events, log records, metrics,
// errors.
func TestTheAPIKeyNeverLeaves(t *testing.T) {
	const secret = "tgp_v1_SECRET0123456789abcdefSECRET"
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{
			Seed: 7,
			Limits: map[string]conformance.Limit{
				conformance.Chat:       {RPM: 60},
				conformance.Embeddings: {RPM: 30, TPM: 2000},
			},
			Headers: conformance.HeaderEveryAnswer | conformance.HeaderRetryAfter,
			Faults: []conformance.Fault{
				{Kind: conformance.FaultStatus, Status: 503, Model: conformance.ScenarioChatModel, Until: 20 * time.Second},
				{Kind: conformance.FaultStatus, Status: 500, Share: 0.2},
				{Kind: conformance.FaultReset, Share: 0.1},
				{Kind: conformance.FaultHang, Share: 0.05},
				{Kind: conformance.FaultTruncate, Share: 0.05},
			},
		})

		var captured bytes.Buffer
		var mu sync.Mutex
		capture := func(format string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(&captured, format+"\n", a...)
		}
		var logs bytes.Buffer
		var logMu sync.Mutex
		logger := slog.New(slog.NewJSONHandler(syncWriter{&logMu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		reader := sdkmetric.NewManualReader()
		provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
		defer provider.Shutdown(context.Background())
		metrics, err := otelobserve.New(provider)
		require.NoError(t, err)

		events := 0
		rt := together.NewTransport(srv,
			together.WithAPIKey(secret),
			together.WithBaseURL("http://sim.test/v1"),
			together.WithFallback(conformance.ScenarioChatModel, "no-such-model", conformance.ScenarioFallbackModel),
			together.WithEvents(func(e transport.Event) {
				mu.Lock()
				events++
				mu.Unlock()
				capture("event %+v %v", e, e.Err)
			}),
			together.WithEvents(slogobserve.New(logger)),
			together.WithEvents(metrics),
			together.WithEvents(func(e transport.Event) { panic(fmt.Sprintf("hook saw %+v", e)) }),
		)
		client := &http.Client{Transport: rt}

		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * 500 * time.Millisecond)
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(5+i%20)*time.Second)
				defer cancel()
				path, body := "/chat/completions", chatBody(conformance.ScenarioChatModel)
				switch i % 3 {
				case 1:
					path, body = "/embeddings", `{"model":"BAAI/bge-large-en-v1.5","input":"`+strings.Repeat("text ", 50)+`"}`
				case 2:
					body = chatBody("unknown/model")
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://sim.test/v1"+path, strings.NewReader(body))
				if err != nil {
					capture("new request: %v", err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					capture("error %v %#v", err, err)
					return
				}
				capture("status %d %v", resp.StatusCode, resp.Header)
				resp.Body.Close()
			})
		}
		wg.Wait()

		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				capture("metric %s %+v", m.Name, m.Data)
				if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
					for _, dp := range sum.DataPoints {
						capture("attrs %s", dp.Attributes.Encoded(attribute.DefaultEncoder()))
					}
				}
			}
		}

		stats := srv.Stats()
		require.Positive(t, stats.TooMany, "the run had 429s")
		require.Positive(t, stats.ServerErrors, "the run had 5xx")
		mu.Lock()
		require.Greater(t, events, 100, "the run had events")
		out := captured.String()
		mu.Unlock()
		logMu.Lock()
		logged := logs.String()
		logMu.Unlock()
		require.Contains(t, out, "gave up")
		require.Contains(t, out, "breaker")
		require.Contains(t, logged, "fell back to another model")
		for _, arrival := range srv.Arrivals() {
			require.Equal(t, secret, arrival.Key, "every request was sent with the key")
		}
		assert.NotContains(t, out, "SECRET")
		assert.NotContains(t, logged, "SECRET")
		assert.NotContains(t, out, "tgp_v1")
		assert.NotContains(t, logged, "tgp_v1")
	})
}

func (l syncWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

// chatBody is a chat request for model.
func chatBody(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}],"max_tokens":16}`
}
