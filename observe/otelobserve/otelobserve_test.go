package otelobserve_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/steadyapi/steady/observe/otelobserve"
	"github.com/steadyapi/steady/transport"
)

// collected is what a ManualReader holds, by instrument name.
type collected map[string]metricdata.Aggregation

func newHook(t *testing.T) (transport.EventFunc, func() collected) {
	t.Helper()
	reader := sdkmetric.NewManualReader()
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { require.NoError(t, provider.Shutdown(context.Background())) })
	hook, err := otelobserve.New(provider)
	require.NoError(t, err)
	return hook, func() collected {
		var rm metricdata.ResourceMetrics
		require.NoError(t, reader.Collect(context.Background(), &rm))
		out := collected{}
		for _, sm := range rm.ScopeMetrics {
			assert.Equal(t, otelobserve.ScopeName, sm.Scope.Name)
			for _, m := range sm.Metrics {
				out[m.Name] = m.Data
			}
		}
		return out
	}
}

// counts returns a counter's values by attribute set.
func counts(t *testing.T, c collected, name string) map[attribute.Distinct]int64 {
	t.Helper()
	sum, ok := c[name].(metricdata.Sum[int64])
	require.True(t, ok, "%s is an int64 counter", name)
	assert.True(t, sum.IsMonotonic)
	out := map[attribute.Distinct]int64{}
	for _, dp := range sum.DataPoints {
		out[dp.Attributes.Equivalent()] = dp.Value
	}
	return out
}

func set(kv ...attribute.KeyValue) attribute.Distinct {
	s := attribute.NewSet(kv...)
	return s.Equivalent()
}

var (
	chat  = otelobserve.AttrEndpoint.String("chat")
	model = otelobserve.AttrModel.String("m")
)

func TestInstruments(t *testing.T) {
	hook, collect := newHook(t)
	deadline := &wrapped{context.DeadlineExceeded}
	for _, e := range []transport.Event{
		{Kind: transport.EventDone, Endpoint: "chat", Attempt: 1, Status: 200},
		{Kind: transport.EventDone, Endpoint: "chat", Attempt: 3, Status: 200},
		{Kind: transport.EventDone, Endpoint: "chat", Attempt: 5, Status: 503},
		{Kind: transport.EventDone, Attempt: 2, Err: deadline},
		{Kind: transport.EventRetry, Endpoint: "chat", Attempt: 1, Status: 429, Wait: 2 * time.Second, Reason: "server"},
		{Kind: transport.EventRetry, Endpoint: "chat", Attempt: 2, Status: 429, Wait: time.Second, Reason: "server"},
		{Kind: transport.EventRetry, Endpoint: "chat", Attempt: 1, Err: errors.New("connection reset"), Wait: 100 * time.Millisecond},
		{Kind: transport.EventGaveUp, Endpoint: "chat", Attempt: 5, Status: 503, Reason: "retries spent"},
		{Kind: transport.EventPaused, Endpoint: "chat", Model: "m", Status: 429, Wait: 2 * time.Second},
		{Kind: transport.EventPaused, Endpoint: "chat", Model: "m", Status: 429, Wait: time.Second},
		{Kind: transport.EventWaited, Endpoint: "chat", Model: "m", Wait: 40 * time.Millisecond},
		{Kind: transport.EventRateChanged, Endpoint: "chat", Model: "m", Rate: 10, Reason: "requests"},
		{Kind: transport.EventRateChanged, Endpoint: "chat", Model: "m", Rate: 9, Reason: "requests"},
		{Kind: transport.EventBreaker, Endpoint: "chat", Model: "m", From: "closed", To: "open"},
		{Kind: transport.EventFellBack, Endpoint: "chat", Model: "m", From: "m", To: "s", Reason: "unavailable"},
		{Kind: transport.EventStore, From: "shared", To: "local", Rate: 0.25},
		{Kind: transport.EventStore, From: "local", To: "shared"},
		{Kind: transport.EventBatch, Endpoint: "embeddings", Model: "m", Count: 20, Status: 200},
		{Kind: transport.EventBatch, Endpoint: "embeddings", Model: "m", Count: 7, Status: 200},
		{Kind: transport.EventCatalog, Endpoint: "models", Status: 200},
		{Kind: 99}, // unknown kinds are ignored
	} {
		hook(e)
	}
	c := collect()

	status := otelobserve.AttrStatus.Int
	assert.Equal(t, map[attribute.Distinct]int64{
		set(chat, status(200)): 2,
		set(chat, status(503)): 1,
		set(otelobserve.AttrEndpoint.String("other"), otelobserve.AttrErrorType.String("deadline_exceeded")): 1,
	}, counts(t, c, otelobserve.MetricRequests))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(chat, status(429)): 2,
		set(chat, otelobserve.AttrErrorType.String("transport")): 1,
	}, counts(t, c, otelobserve.MetricRetries))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(chat, status(503), otelobserve.AttrReason.String("retries spent")): 1,
	}, counts(t, c, otelobserve.MetricGaveUp))
	assert.Equal(t, map[attribute.Distinct]int64{set(chat, model): 2}, counts(t, c, otelobserve.MetricRateLimited))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(chat, model, otelobserve.AttrFrom.String("closed"), otelobserve.AttrTo.String("open")): 1,
	}, counts(t, c, otelobserve.MetricBreaker))
	assert.Equal(t, map[attribute.Distinct]int64{
		set(chat, model, otelobserve.AttrFrom.String("m"), otelobserve.AttrTo.String("s"), otelobserve.AttrReason.String("unavailable")): 1,
	}, counts(t, c, otelobserve.MetricFallbacks))

	from, to := otelobserve.AttrFrom.String, otelobserve.AttrTo.String
	assert.Equal(t, map[attribute.Distinct]int64{
		set(from("shared"), to("local")): 1,
		set(from("local"), to("shared")): 1,
	}, counts(t, c, otelobserve.MetricStore))
	embeddings := otelobserve.AttrEndpoint.String("embeddings")
	assert.Equal(t, map[attribute.Distinct]int64{set(embeddings, model, status(200)): 2}, counts(t, c, otelobserve.MetricBatches))
	assert.Equal(t, map[attribute.Distinct]int64{set(embeddings, model): 27}, counts(t, c, otelobserve.MetricBatchItems))
	assert.Equal(t, map[attribute.Distinct]int64{set(otelobserve.AttrEndpoint.String("models"), status(200)): 1},
		counts(t, c, otelobserve.MetricCatalog))

	gauge, ok := c[otelobserve.MetricRate].(metricdata.Gauge[float64])
	require.True(t, ok)
	require.Len(t, gauge.DataPoints, 1)
	assert.Equal(t, 9.0, gauge.DataPoints[0].Value, "the rate as last set")
	assert.Equal(t, set(chat, model, otelobserve.AttrReason.String("requests")), gauge.DataPoints[0].Attributes.Equivalent())

	hist, ok := c[otelobserve.MetricWait].(metricdata.Histogram[float64])
	require.True(t, ok)
	waits := map[attribute.Distinct]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range hist.DataPoints {
		waits[dp.Attributes.Equivalent()] = dp
	}
	require.Len(t, waits, 2)
	retryWaits := waits[set(chat, otelobserve.AttrWaitCause.String("retry"))]
	assert.Equal(t, uint64(3), retryWaits.Count)
	assert.InDelta(t, 3.1, retryWaits.Sum, 1e-9)
	limiterWaits := waits[set(chat, model, otelobserve.AttrWaitCause.String("limiter"))]
	assert.Equal(t, uint64(1), limiterWaits.Count)
	assert.InDelta(t, 0.04, limiterWaits.Sum, 1e-9)
	assert.Equal(t, []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}, limiterWaits.Bounds)
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "steady/retry: 2 attempts: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestErrorTypes(t *testing.T) {
	hook, collect := newHook(t)
	for _, err := range []error{
		&wrapped{context.DeadlineExceeded}, transport.ErrDeadline, &wrapped{context.Canceled},
		&wrapped{transport.ErrModelUnavailable}, errors.New("connection refused"),
	} {
		hook(transport.Event{Kind: transport.EventDone, Endpoint: "embeddings", Err: err})
	}
	embeddings := otelobserve.AttrEndpoint.String("embeddings")
	typ := otelobserve.AttrErrorType.String
	assert.Equal(t, map[attribute.Distinct]int64{
		set(embeddings, typ("deadline_exceeded")): 2,
		set(embeddings, typ("canceled")):          1,
		set(embeddings, typ("model_unavailable")): 1,
		set(embeddings, typ("transport")):         1,
	}, counts(t, collect(), otelobserve.MetricRequests))
}

func TestNilProvider(t *testing.T) {
	hook, err := otelobserve.New(nil)
	assert.Error(t, err)
	assert.Nil(t, hook)
}

// BenchmarkRecord is the cost of one request's EventDone through the SDK:
// the attribute set is built per event.
func BenchmarkRecord(b *testing.B) {
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer provider.Shutdown(context.Background())
	hook, err := otelobserve.New(provider)
	require.NoError(b, err)
	e := transport.Event{Kind: transport.EventDone, Endpoint: "chat", Attempt: 1, Status: 200}
	b.ReportAllocs()
	for b.Loop() {
		hook(e)
	}
}

// The model of a request is the client's to name: a client that names a
// new model in every request must not give each its own series of every
// instrument. Past a few hundred models, the rest share one value; those
// seen first keep theirs.
func TestModelsAreBounded(t *testing.T) {
	hook, collect := newHook(t)
	const sent = 5000
	for i := range sent {
		m := fmt.Sprintf("attacker/model-%d-%s", i, strings.Repeat("x", i%600))
		hook(transport.Event{Kind: transport.EventWaited, Endpoint: "chat", Model: m, Wait: time.Second})
		hook(transport.Event{Kind: transport.EventBreaker, Endpoint: "chat", Model: m, From: "closed", To: "open"})
	}
	hook(transport.Event{Kind: transport.EventBreaker, Endpoint: "chat", Model: "attacker/model-0-", From: "closed", To: "open"})
	c := collect()

	breaker := counts(t, c, otelobserve.MetricBreaker)
	assert.Less(t, len(breaker), 1000, "series of %d models", sent)
	transition := []attribute.KeyValue{chat, otelobserve.AttrFrom.String("closed"), otelobserve.AttrTo.String("open")}
	assert.Equal(t, int64(2), breaker[set(append(transition, otelobserve.AttrModel.String("attacker/model-0-"))...)],
		"a model seen first keeps its own series")
	var total int64
	for _, n := range breaker {
		total += n
	}
	assert.Equal(t, int64(sent+1), total, "every transition is counted")

	hist, ok := c[otelobserve.MetricWait].(metricdata.Histogram[float64])
	require.True(t, ok)
	assert.Less(t, len(hist.DataPoints), 1000)
	long := 0
	for _, dp := range hist.DataPoints {
		if m, _ := dp.Attributes.Value(otelobserve.AttrModel); len(m.AsString()) > transport.MaxKeyLen {
			long++
		}
	}
	assert.Zero(t, long, "a model's value is bounded in length too")
}
