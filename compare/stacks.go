package main

import (
	"context"
	"math"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// stacks returns the stacks compared, in table order. Each Wrap builds its
// stack afresh, so that every run starts from a clean state inside its
// own bubble. Adding a stack is adding an entry.
func stacks() []conformance.Stack {
	return []conformance.Stack{
		{Name: "bare"},
		{Name: "naive (guide's port)", Wrap: naive, Embed: conformance.NaiveEmbed},
		{Name: "go-retryablehttp", Wrap: retryableHTTP},
		{Name: "failsafe-go", Wrap: failsafe},
		{Name: "steady retry", Wrap: func(next http.RoundTripper) http.RoundTripper {
			return retry.New()(next)
		}},
		{Name: "steady retry+bucket", Wrap: steadyRetryBucket},
		{Name: "steady together", Wrap: steadyTogether, Embed: embedAll},
	}
}

// The guide's figures (requests a minute), which every compared stack
// that takes a rate is given, so that no stack's table row shows the rate
// it was set to rather than what it does with it.
const (
	guideChatRPM       = 600
	guideEmbeddingsRPM = 300
)

// perEndpoint routes chat and embeddings requests each through a stack of
// its own, built by stack at the guide's figure for the endpoint.
func perEndpoint(next http.RoundTripper, stack func(next http.RoundTripper, rpm float64) http.RoundTripper) http.RoundTripper {
	at := func(rpm float64) transport.Middleware {
		return func(next http.RoundTripper) http.RoundTripper { return stack(next, rpm) }
	}
	return transport.Route(nil, map[string]transport.Middleware{
		transport.EndpointChat:       at(guideChatRPM),
		transport.EndpointEmbeddings: at(guideEmbeddingsRPM),
	})(next)
}

// steadyRetryBucket is steady's retry decorator around its limiter, one
// bucket per endpoint at the guide's figures, which the server's answers
// then correct.
func steadyRetryBucket(next http.RoundTripper) http.RoundTripper {
	return perEndpoint(next, func(next http.RoundTripper, rpm float64) http.RoundTripper {
		return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(bucket.PerMinute(rpm))))
	})
}

// steadyTogether is together.NewTransport with its defaults, and the
// scenarios' second chat model as the first one's fallback.
func steadyTogether(next http.RoundTripper) http.RoundTripper {
	return together.NewTransport(next,
		together.WithBaseURL(conformance.ScenarioBaseURL),
		together.WithFallback(conformance.ScenarioChatModel, conformance.ScenarioFallbackModel))
}

// embedAll runs a job with together.EmbedAll and its defaults, counting
// the texts that got a vector.
func embedAll(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
	vecs, err := together.EmbedAll(ctx, client, model, texts, together.WithAPIBase(baseURL))
	return embedded(vecs), err
}

// embedded counts the texts EmbedAll embedded.
func embedded(vecs [][]float32) int {
	done := 0
	for _, v := range vecs {
		if v != nil {
			done++
		}
	}
	return done
}

// naive is the guide's client: its limiters at 500 and 250 RPM, its retry
// loop.
func naive(next http.RoundTripper) http.RoundTripper {
	return conformance.NewNaive(1).Middleware()(next)
}

// retryableHTTP is go-retryablehttp with its defaults (4 retries, 1–30 s
// exponential backoff, Retry-After read on 429 and 503), its logger
// silenced.
func retryableHTTP(next http.RoundTripper) http.RoundTripper {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: next}
	c.Logger = nil
	c.RetryMax = 4
	return &retryablehttp.RoundTripper{Client: c}
}

// failsafe is failsafe-go as its HTTP documentation and the guide suggest:
// failsafehttp's retry policy (retries 429 and 5xx, reads Retry-After)
// with 4 retries and a 1–30 s backoff when the server names no wait,
// around a circuit breaker (opens when 5 of the last 10 calls failed with
// an error or a 5xx, for 30 s), around a smooth rate limiter that lets a
// caller wait up to a minute for its turn: per endpoint, at the guide's
// figures, as steady retry+bucket is given them (the guide's own code
// keeps 500 of 600 as a buffer; a peer set there would be measured by its
// setting).
func failsafe(next http.RoundTripper) http.RoundTripper { return perEndpoint(next, failsafeAt) }

// failsafeAt is failsafe with its rate limiter at rpm, or without one when
// rpm is 0: failsafe-go has no limiter that finds a rate by itself.
func failsafeAt(next http.RoundTripper, rpm float64) http.RoundTripper {
	rp := failsafehttp.NewRetryPolicyBuilder().
		WithMaxRetries(4).
		WithBackoff(time.Second, 30*time.Second).
		Build()
	cb := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(r *http.Response, err error) bool { return err != nil || (r != nil && r.StatusCode >= 500) }).
		WithFailureThresholdRatio(5, 10).
		WithDelay(30 * time.Second).
		Build()
	if rpm <= 0 {
		return failsafehttp.NewRoundTripper(next, rp, cb)
	}
	rl := ratelimiter.NewSmoothBuilder[*http.Response](uint(math.Round(rpm)), time.Minute).
		WithMaxWaitTime(time.Minute).
		Build()
	return failsafehttp.NewRoundTripper(next, rp, cb, rl)
}

// matrixStack is a stack graded on the model matrix: made afresh for
// each run from what the run tells it of the server's limit.
type matrixStack struct {
	Name  string
	Build func(told conformance.Told) conformance.Stack
}

// matrixStacks returns the stacks graded on the model matrix, in table
// order: steady's two (the limiter the server's answers correct, and the
// preset), and the two peers that can be told a rate or need none.
func matrixStacks() []matrixStack {
	return []matrixStack{
		{"steady retry+bucket", func(told conformance.Told) conformance.Stack {
			return conformance.Stack{Name: "steady retry+bucket", Wrap: func(next http.RoundTripper) http.RoundTripper {
				var rate bucket.Rate // unknown: the limiter finds it
				if told.Known() {
					rate = bucket.PerMinute(told.RPM)
				}
				return transport.Chain(next, retry.New(), bucket.Limit(bucket.New(rate)))
			}}
		}},
		{"steady together", func(told conformance.Told) conformance.Stack {
			return conformance.Stack{Name: "steady together", Wrap: func(next http.RoundTripper) http.RoundTripper {
				return together.NewTransport(next,
					together.WithBaseURL(conformance.ScenarioBaseURL),
					together.WithRate(together.RouteChat, told.RPM)) // 0: unknown
			}}
		}},
		{"failsafe-go", func(told conformance.Told) conformance.Stack {
			return conformance.Stack{Name: "failsafe-go", Wrap: func(next http.RoundTripper) http.RoundTripper {
				return failsafeAt(next, told.RPM)
			}}
		}},
		{"go-retryablehttp", func(conformance.Told) conformance.Stack {
			return conformance.Stack{Name: "go-retryablehttp", Wrap: retryableHTTP}
		}},
	}
}
