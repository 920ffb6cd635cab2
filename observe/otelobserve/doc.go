// Package otelobserve records steady's events as OpenTelemetry metrics.
//
// It turns each [transport.Event] into a measurement: requests, retries, 429 answers, give-ups, time
// spent waiting, the limiters' rates, breaker changes and fallbacks, each
// with the request's endpoint and, where known, its model. It uses only the
// OpenTelemetry metric API (go.opentelemetry.io/otel/metric); the program
// chooses the SDK and the exporter.
//
//	events, err := otelobserve.New(provider) // a metric.MeterProvider
//	client := together.NewClient(together.WithEvents(events))
//
// The same hook fits each decorator alone (each takes a WithEvents option:
// retry.WithEvents, bucket.WithEvents, breaker.WithEvents,
// transport.WithEvents for Fallback) and a shared store
// (redisbucket.WithEvents). A program that does not import this package
// does not link OpenTelemetry.
//
// # Instruments
//
//	steady.requests              counter    requests ended, from the retry decorator (transport.EventDone)
//	steady.retries               counter    retries made (transport.EventRetry)
//	steady.gave_up               counter    failures not retried, by reason (transport.EventGaveUp)
//	steady.rate_limited          counter    429 answers seen by a limiter (transport.EventPaused)
//	steady.wait.duration         histogram  seconds a request waited: for the limiter's tokens
//	                                        (steady.wait.cause=limiter) or before a retry (=retry)
//	steady.limiter.rate          gauge      a limiter's rate, tokens a second, as last set
//	steady.breaker.transitions   counter    breaker changes of state, by from and to
//	steady.fallbacks             counter    requests that left a model for the next of its chain
//	steady.store.transitions     counter    a shared store going local and back, by from and to
//	steady.batches               counter    batches of a batch helper done, by status or error type
//	steady.batch.items           counter    the items (texts) of those batches
//	steady.catalog.fetches       counter    model catalog fetches, by status or error type
//
// Attributes: steady.endpoint (chat, completions, embeddings, responses,
// messages, images, fine-tunes, batches, models, or "other") on every
// instrument but steady.store.transitions;
// steady.model where the decorator knew the model (the limiters of the
// presets, which keep one limiter per model, and for a limiter keyed by
// something else, such as an Azure OpenAI deployment, its key; breakers,
// fallbacks;
// the retry decorator does not read bodies, so requests, retries and
// give-ups carry no model), by name for the first 256 models seen and as
// "other" for any later one, since a client may name a new model in every
// request (a name is cut to transport.MaxKeyLen as transport.BoundKey
// does, and a byte that is not valid UTF-8, which OTLP and Prometheus
// refuse, becomes U+FFFD); http.response.status_code or error.type
// (deadline_exceeded, canceled, model_unavailable, transport) on requests,
// retries and give-ups; steady.reason on give-ups and fallbacks, and on the
// rate as the limiter's units (requests or tokens); steady.from and
// steady.to on breaker changes, store changes and fallbacks.
//
// # Prometheus
//
// A Prometheus user reads the same instruments through OpenTelemetry's
// Prometheus exporter (go.opentelemetry.io/otel/exporters/prometheus),
// which is a reader for the OpenTelemetry SDK:
//
//	exporter, err := prometheus.New()                                // otel/exporters/prometheus
//	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)) // otel/sdk/metric
//	events, err := otelobserve.New(provider)
//	client := together.NewClient(together.WithEvents(events))
//	http.Handle("/metrics", promhttp.Handler())                      // prometheus/client_golang
//
// The exporter registers with Prometheus's default registerer, which
// promhttp.Handler serves. Names follow its translation: dots become
// underscores, counters end in _total and units are appended, so
// steady.requests is scraped as steady_requests_total and
// steady.wait.duration as steady_wait_duration_seconds.
package otelobserve
