package together_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// brief keeps what an event's order test compares: kind, endpoint, model,
// attempt, status, from, to, reason (waits are jittered), of every event
// but the limiter's waits (which retries' random backoffs make come or
// not).
func brief(events []transport.Event) []string {
	var out []string
	for _, e := range events {
		if e.Kind == transport.EventWaited {
			continue
		}
		out = append(out, fmt.Sprintf("%v %s %s a%d s%d %s>%s %s", e.Kind, e.Endpoint, e.Model, e.Attempt, e.Status, e.From, e.To, e.Reason))
	}
	return out
}

// byModel answers each model with its status (200 when not set).
func byModel(status map[string]int) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		model, send, err := transport.RequestModel(req, 0)
		if err != nil {
			return nil, err
		}
		if send.Body != nil {
			send.Body.Close()
		}
		code := status[model]
		if code == 0 {
			code = http.StatusOK
		}
		return &http.Response{StatusCode: code, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
}

func TestWithEventsHearsEveryDecorator(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log, second conformance.EventRecorder
		rt := together.NewTransport(byModel(map[string]int{"big": 503}),
			together.WithAPIKey("k"),
			together.WithFallback("big", "small"),
			together.WithEvents(log.Record),
			together.WithEvents(second.Record),
		)
		resp := post(t, t.Context(), &http.Client{Transport: rt}, "/chat/completions", chatBody("big"))
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))

		// Five attempts at big (the breaker opens on the fifth failure,
		// before the retry decorator hears of it), then small at once.
		assert.Equal(t, []string{
			"retry chat  a1 s503 > backoff",
			"retry chat  a2 s503 > backoff",
			"retry chat  a3 s503 > backoff",
			"retry chat  a4 s503 > backoff",
			"breaker chat big a0 s0 closed>open ",
			"gave up chat  a5 s503 > retries spent",
			"done chat  a5 s503 > ",
			"fell back chat big a0 s0 big>small overloaded",
			"done chat  a1 s200 > ",
		}, brief(log.Events()))
		assert.Equal(t, log.Events(), second.Events(), "each WithEvents adds a hook")
	})
}

// sequence answers the i-th request with answer(i).
func sequence(answer func(i int) (int, http.Header)) http.RoundTripper {
	var mu sync.Mutex
	n := 0
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Body != nil {
			req.Body.Close()
		}
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		status, h := answer(i)
		if h == nil {
			h = http.Header{}
		}
		return &http.Response{StatusCode: status, Header: h, Body: http.NoBody, Request: req}, nil
	})
}

func TestWithEventsHearsTheLimitersOfEachModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		// The first answer shows a token limit of 10 a second, which opens
		// the token limiter; the fourth is a 429.
		rt := together.NewTransport(sequence(func(i int) (int, http.Header) {
			switch i {
			case 0:
				return http.StatusOK, http.Header{"X-Tokenlimit-Limit": {"10"}}
			case 3:
				return http.StatusTooManyRequests, http.Header{"X-Ratelimit-Reset": {"1"}}
			}
			return http.StatusOK, nil
		}), together.WithEvents(log.Record))
		client := &http.Client{Transport: rt}
		for range 4 {
			post(t, t.Context(), client, "/chat/completions", chatBody("m")).Body.Close()
		}

		var tokenWaits, paused, rates int
		for _, e := range log.Events() {
			switch e.Kind {
			case transport.EventWaited:
				assert.Equal(t, "m", e.Model)
				if e.Reason == "tokens" {
					tokenWaits++
					assert.GreaterOrEqual(t, e.Wait, 800*time.Millisecond, "18 tokens at 10 a second, less what was saved")
				}
			case transport.EventPaused:
				paused++
				assert.Equal(t, transport.Event{Kind: transport.EventPaused, Endpoint: "chat", Model: "m", Key: "m",
					Status: 429, Wait: time.Second, Reason: "requests"}, e, "the limiter's key is the model")
			case transport.EventRateChanged:
				rates++
				assert.Equal(t, "m", e.Model)
			}
		}
		assert.Equal(t, 4, tokenWaits, "the second to fourth requests and the retry waited for text tokens")
		assert.Equal(t, 1, paused, "one 429, reported once although two limiters saw it")
		assert.Positive(t, rates, "the 429 lowered the rate")
		assert.Contains(t, brief(log.Events()), "retry chat  a1 s429 > server")
	})
}

func TestWithEventsKeepsTheBreakersOwnHooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log, own conformance.EventRecorder
		rt := together.NewTransport(byModel(map[string]int{"m": 503}),
			together.WithEvents(log.Record),
			together.WithMaxRetries(0),
			together.WithBreaker(breaker.WithConsecutiveFailures(2), breaker.WithEvents(own.Record)),
		)
		client := &http.Client{Transport: rt}
		for range 2 {
			post(t, t.Context(), client, "/chat/completions", chatBody("m")).Body.Close()
		}
		want := transport.Event{Kind: transport.EventBreaker, Key: "sim.test m", Endpoint: "chat", Model: "m",
			From: "closed", To: "open"}
		assert.Equal(t, []transport.Event{want}, own.Events())
		assert.Contains(t, log.Events(), want)
	})
}

func TestAPanickingEventHookDoesNotBreakThePreset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		rt := together.NewTransport(byModel(map[string]int{"big": 503}),
			together.WithFallback("big", "small"),
			together.WithEvents(func(transport.Event) { panic("broken hook") }),
			together.WithEvents(log.Record),
		)
		resp := post(t, t.Context(), &http.Client{Transport: rt}, "/chat/completions", chatBody("big"))
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "small", resp.Header.Get(transport.ModelHeader))
		assert.NotEmpty(t, log.Events(), "the hook after the broken one still hears every event")
	})
}

// One hook hears the whole job: EmbedAll's catalog check and each of its
// batches, with the texts it held, through whatever wraps the preset.
func TestWithEventsHearsEmbedAllAndTheCatalog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log conformance.EventRecorder
		srv := conformance.NewServer(conformance.Config{})
		preset := together.NewTransport(srv, together.WithAPIKey("k"), together.WithBaseURL("http://sim.test/v1"),
			together.WithEvents(log.Record))
		wrapped := transport.Func(func(r *http.Request) (*http.Response, error) { return preset.RoundTrip(r) })
		_, err := together.EmbedAll(t.Context(), &http.Client{Transport: wrapped}, "BAAI/bge-large-en-v1.5",
			make([]string, 45), together.WithBatchSize(20))
		require.NoError(t, err)
		var catalogs, texts int
		var batches []int
		for _, e := range log.Events() {
			switch e.Kind {
			case transport.EventCatalog:
				catalogs++
				assert.Equal(t, 200, e.Status)
			case transport.EventBatch:
				batches = append(batches, e.Count)
				texts += e.Count
				assert.Equal(t, "BAAI/bge-large-en-v1.5", e.Model)
				assert.Equal(t, 200, e.Status)
			}
		}
		assert.Equal(t, 1, catalogs)
		assert.ElementsMatch(t, []int{20, 20, 5}, batches)
		assert.Equal(t, 45, texts)
	})
}
