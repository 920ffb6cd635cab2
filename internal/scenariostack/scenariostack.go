// Package scenariostack is the OpenAI and Anthropic presets as a user sets
// them up against the simulator of package conformance speaking their
// provider's dialect: their defaults (the rates learnt from the first
// answers), the scenarios' API key and root, and the scenarios' second
// chat model as the first one's fallback. The presets' scenario tests and
// the comparison program run these stacks, so that what the tests hold to
// a goal is what the comparison reports.
package scenariostack

import (
	"context"
	"net/http"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/together"
)

// OpenAI is the OpenAI preset's stack, named name. Its embedding job is
// run by together.EmbedAll, which speaks OpenAI's embeddings API and keeps
// enough requests in flight to use the rate; a driver that sends one batch
// at a time waits on the server's latency instead.
func OpenAI(name string) conformance.Stack {
	return conformance.Stack{
		Name: name,
		Wrap: wrap(openai.NewTransport),
		Embed: func(ctx context.Context, client *http.Client, baseURL, model string, texts []string) (int, error) {
			vecs, err := together.EmbedAll(ctx, client, model, texts, together.WithAPIBase(baseURL), together.WithoutModelCheck())
			n := 0
			for _, v := range vecs {
				if v != nil {
					n++
				}
			}
			return n, err
		},
	}
}

// Anthropic is the Anthropic preset's stack, named name. Anthropic has no
// embeddings: its dialect's scenarios run no embedding job.
func Anthropic(name string) conformance.Stack {
	return conformance.Stack{Name: name, Wrap: wrap(anthropic.NewTransport)}
}

// wrap is a preset's NewTransport as the scenarios set it up: the
// scenarios' key and root, and their second chat model as the first one's
// fallback. (The presets' options are all preset.Option.)
func wrap(newTransport func(http.RoundTripper, ...preset.Option) *preset.Transport) func(http.RoundTripper) http.RoundTripper {
	return func(next http.RoundTripper) http.RoundTripper {
		return newTransport(next, preset.WithAPIKey("scenario-key"),
			preset.WithBaseURL(conformance.ScenarioBaseURL),
			preset.WithFallback(conformance.ScenarioChatModel, conformance.ScenarioFallbackModel))
	}
}
