package otelobserve_test

import (
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/transport"
)

// attributeSets are the attribute sets of every data point collected.
func attributeSets(c collected) []attribute.Set {
	var out []attribute.Set
	for _, data := range c {
		switch d := data.(type) {
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				out = append(out, dp.Attributes)
			}
		case metricdata.Gauge[float64]:
			for _, dp := range d.DataPoints {
				out = append(out, dp.Attributes)
			}
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				out = append(out, dp.Attributes)
			}
		}
	}
	return out
}

// OTLP carries attribute values as protobuf strings, which must be valid
// UTF-8: one value that is not fails the whole export (every series of the
// batch), and Prometheus refuses such a label value too. A model is the
// client's to name and a limiter's key may come from a URL path; a long
// name of multi-byte characters, cut to its bound inside a character,
// must still give a valid value.
func TestEveryAttributeValueIsValidUTF8(t *testing.T) {
	hook, collect := newHook(t)
	long := strings.Repeat("€", 100) // 300 bytes: bounded, cut inside a character
	failing := transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return &http.Response{StatusCode: 503, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
	rt := breaker.New(breaker.WithEvents(hook))(failing)
	for range breaker.DefaultConsecutiveFailures {
		req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions",
			strings.NewReader(`{"model":"`+long+`"}`))
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
	}
	// A limiter keyed by an Azure deployment, as a URL path may spell it.
	hook(transport.Event{Kind: transport.EventRateChanged, Endpoint: "chat", Key: "dep\xff", Rate: 1, Reason: "requests"})

	sets := attributeSets(collect())
	require.NotEmpty(t, sets)
	models := 0
	for _, s := range sets {
		for _, kv := range s.ToSlice() {
			if kv.Value.Type() == attribute.STRING {
				assert.True(t, utf8.ValidString(kv.Value.AsString()), "%s=%q is not valid UTF-8", kv.Key, kv.Value.AsString())
			}
			if kv.Key == "steady.model" {
				models++
			}
		}
	}
	assert.Equal(t, 2, models, "the breaker's transition and the rate each name their model")
}

// Each byte that is not valid UTF-8 becomes U+FFFD, as the package says:
// two limiters whose keys differ in the length of such a run keep a rate
// series each, where replacing the run by one U+FFFD made them one series,
// the last rate set hiding the other's.
func TestEachInvalidByteBecomesAReplacementCharacter(t *testing.T) {
	hook, collect := newHook(t)
	hook(transport.Event{Kind: transport.EventRateChanged, Endpoint: "chat", Key: "dep\xff", Rate: 1, Reason: "requests"})
	hook(transport.Event{Kind: transport.EventRateChanged, Endpoint: "chat", Key: "dep\xff\xfe", Rate: 2, Reason: "requests"})

	var models []string
	for _, s := range attributeSets(collect()) {
		if v, ok := s.Value("steady.model"); ok {
			models = append(models, v.AsString())
		}
	}
	assert.ElementsMatch(t, []string{"dep\uFFFD", "dep\uFFFD\uFFFD"}, models)
}
