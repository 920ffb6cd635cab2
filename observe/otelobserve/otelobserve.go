package otelobserve

import (
	"context"
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/steadyapi/steady/transport"
)

// ScopeName is the instrumentation scope of the meter the instruments are
// made with.
const ScopeName = "github.com/steadyapi/steady/observe/otelobserve"

// The instruments' names.
const (
	MetricRequests    = "steady.requests"
	MetricRetries     = "steady.retries"
	MetricGaveUp      = "steady.gave_up"
	MetricRateLimited = "steady.rate_limited"
	MetricWait        = "steady.wait.duration"
	MetricRate        = "steady.limiter.rate"
	MetricBreaker     = "steady.breaker.transitions"
	MetricFallbacks   = "steady.fallbacks"
	MetricStore       = "steady.store.transitions"
	MetricBatches     = "steady.batches"
	MetricBatchItems  = "steady.batch.items"
	MetricCatalog     = "steady.catalog.fetches"
)

// The attributes' keys.
const (
	AttrEndpoint  = attribute.Key("steady.endpoint")
	AttrModel     = attribute.Key("steady.model")
	AttrStatus    = attribute.Key("http.response.status_code")
	AttrErrorType = attribute.Key("error.type")
	AttrWaitCause = attribute.Key("steady.wait.cause")
	AttrReason    = attribute.Key("steady.reason")
	AttrFrom      = attribute.Key("steady.from")
	AttrTo        = attribute.Key("steady.to")
)

// waitBounds are the wait histogram's buckets, in seconds: from a few
// milliseconds of pacing to a minute of server-directed pause.
var waitBounds = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

type instruments struct {
	requests, retries, gaveUp, rateLimited, breaker, fallbacks metric.Int64Counter
	store, batches, batchItems, catalog                        metric.Int64Counter
	wait                                                       metric.Float64Histogram
	rate                                                       metric.Float64Gauge
	models                                                     modelSet
}

// maxModels bounds the values of steady.model. A request's model is the
// client's to name, so a client naming a new one in each request would
// otherwise give each a series of every instrument, without end. It is
// more than any account uses; the models past it share otherModel.
const maxModels = 256

// otherModel is the steady.model of the models past maxModels.
const otherModel = "other"

// modelSet is the models given a value of their own, the first maxModels
// seen.
type modelSet struct {
	mu   sync.RWMutex
	seen map[string]struct{}
}

// value returns the steady.model of model: its name, bounded in length
// and made valid UTF-8, or otherModel past maxModels.
//
// A value that is not valid UTF-8 fails OTLP's whole export (attribute
// values are protobuf strings) and is refused as a Prometheus label; a
// model's name or a limiter's key (one from a URL path) may hold bytes
// that are not (transport.BoundKey cuts between characters, but keeps the
// bytes it is given), so each invalid byte is replaced by U+FFFD.
func (s *modelSet) value(model string) string {
	model = transport.BoundKey(model)
	if !utf8.ValidString(model) {
		model = validUTF8(model)
	}
	s.mu.RLock()
	_, ok := s.seen[model]
	full := len(s.seen) >= maxModels
	s.mu.RUnlock()
	switch {
	case ok:
		return model
	case full:
		return otherModel
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[model]; ok {
		return model
	}
	if len(s.seen) >= maxModels {
		return otherModel
	}
	if s.seen == nil {
		s.seen = make(map[string]struct{})
	}
	s.seen[model] = struct{}{}
	return model
}

// validUTF8 is s with each byte that is not valid UTF-8 replaced by
// U+FFFD. strings.ToValidUTF8 replaces a run of them by one, which would
// give names that differ in such a run's length one value.
func validUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}

// New makes the instruments with a meter of provider and returns the event
// hook that records into them. The hook is safe for concurrent use, and
// never blocks on an exporter: recording is the SDK's in-memory
// aggregation.
func New(provider metric.MeterProvider) (transport.EventFunc, error) {
	if provider == nil {
		return nil, errors.New("otelobserve: nil MeterProvider")
	}
	m := provider.Meter(ScopeName)
	var in instruments
	var errs [12]error
	in.requests, errs[0] = m.Int64Counter(MetricRequests, metric.WithUnit("{request}"),
		metric.WithDescription("Requests ended, with the status returned or the error's type."))
	in.retries, errs[1] = m.Int64Counter(MetricRetries, metric.WithUnit("{retry}"),
		metric.WithDescription("Retries made, with the failed attempt's status or error type."))
	in.gaveUp, errs[2] = m.Int64Counter(MetricGaveUp, metric.WithUnit("{request}"),
		metric.WithDescription("Failures that are retried but were not, by reason."))
	in.rateLimited, errs[3] = m.Int64Counter(MetricRateLimited, metric.WithUnit("{response}"),
		metric.WithDescription("429 answers seen by a rate limiter."))
	in.wait, errs[4] = m.Float64Histogram(MetricWait, metric.WithUnit("s"),
		metric.WithDescription("Time a request waited, for the limiter's tokens or before a retry."),
		metric.WithExplicitBucketBoundaries(waitBounds...))
	in.rate, errs[5] = m.Float64Gauge(MetricRate, metric.WithUnit("{token}/s"),
		metric.WithDescription("A rate limiter's rate, as last set."))
	in.breaker, errs[6] = m.Int64Counter(MetricBreaker, metric.WithUnit("{transition}"),
		metric.WithDescription("Circuit breaker changes of state."))
	in.fallbacks, errs[7] = m.Int64Counter(MetricFallbacks, metric.WithUnit("{request}"),
		metric.WithDescription("Requests that left a model for the next of its chain."))
	in.store, errs[8] = m.Int64Counter(MetricStore, metric.WithUnit("{transition}"),
		metric.WithDescription("A shared limiter store going local (its backend stopped answering) and back."))
	in.batches, errs[9] = m.Int64Counter(MetricBatches, metric.WithUnit("{batch}"),
		metric.WithDescription("Batches of a batch helper done, with the status returned or the error's type."))
	in.batchItems, errs[10] = m.Int64Counter(MetricBatchItems, metric.WithUnit("{item}"),
		metric.WithDescription("The items (texts to embed) of the batches done."))
	in.catalog, errs[11] = m.Int64Counter(MetricCatalog, metric.WithUnit("{fetch}"),
		metric.WithDescription("Fetches of the model catalog, with the status returned or the error's type."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return in.record, nil
}

func (in *instruments) record(e transport.Event) {
	ctx := context.Background()
	var buf [6]attribute.KeyValue
	kv := append(buf[:0], endpoint(e))
	if m := model(e); m != "" {
		kv = append(kv, AttrModel.String(in.models.value(m)))
	}
	switch e.Kind {
	case transport.EventDone:
		in.requests.Add(ctx, 1, metric.WithAttributes(outcome(kv, e)...))
	case transport.EventRetry:
		in.retries.Add(ctx, 1, metric.WithAttributes(outcome(kv, e)...))
		in.wait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(append(kv, AttrWaitCause.String("retry"))...))
	case transport.EventGaveUp:
		in.gaveUp.Add(ctx, 1, metric.WithAttributes(append(outcome(kv, e), AttrReason.String(e.Reason))...))
	case transport.EventPaused:
		in.rateLimited.Add(ctx, 1, metric.WithAttributes(kv...))
	case transport.EventWaited:
		in.wait.Record(ctx, e.Wait.Seconds(), metric.WithAttributes(append(kv, AttrWaitCause.String("limiter"))...))
	case transport.EventRateChanged:
		if e.Reason != "" {
			kv = append(kv, AttrReason.String(e.Reason))
		}
		in.rate.Record(ctx, e.Rate, metric.WithAttributes(kv...))
	case transport.EventBreaker:
		in.breaker.Add(ctx, 1, metric.WithAttributes(append(kv, AttrFrom.String(e.From), AttrTo.String(e.To))...))
	case transport.EventFellBack:
		in.fallbacks.Add(ctx, 1, metric.WithAttributes(append(kv,
			AttrFrom.String(e.From), AttrTo.String(e.To), AttrReason.String(e.Reason))...))
	case transport.EventStore:
		in.store.Add(ctx, 1, metric.WithAttributes(AttrFrom.String(e.From), AttrTo.String(e.To)))
	case transport.EventBatch:
		in.batches.Add(ctx, 1, metric.WithAttributes(outcome(kv, e)...))
		in.batchItems.Add(ctx, int64(e.Count), metric.WithAttributes(kv...))
	case transport.EventCatalog:
		in.catalog.Add(ctx, 1, metric.WithAttributes(outcome(kv, e)...))
	}
}

// model is the steady.model of e: its model or, for a limiter keyed by
// something else (Azure OpenAI's deployment, which names no model in its
// events), the limiter's key, so that each limiter's rate stays a series
// of its own.
func model(e transport.Event) string {
	if e.Model == "" {
		switch e.Kind {
		case transport.EventWaited, transport.EventPaused, transport.EventRateChanged:
			return e.Key
		}
	}
	return e.Model
}

func endpoint(e transport.Event) attribute.KeyValue {
	if e.Endpoint == "" {
		return AttrEndpoint.String("other")
	}
	return AttrEndpoint.String(e.Endpoint)
}

// outcome adds the status of e's answer, or the type of its error.
func outcome(kv []attribute.KeyValue, e transport.Event) []attribute.KeyValue {
	switch {
	case e.Status != 0:
		return append(kv, AttrStatus.Int(e.Status))
	case e.Err != nil:
		return append(kv, AttrErrorType.String(errorType(e.Err)))
	}
	return kv
}

// errorType names an error's kind with few values, as a metric attribute
// must: which errors there are, not their messages.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline_exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, transport.ErrModelUnavailable):
		return "model_unavailable"
	}
	return "transport"
}
