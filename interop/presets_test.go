package interop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaiv3 "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/breaker"
	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

// The SDKs through the presets, over loopback, against the simulator
// speaking each provider's dialect: its limits stated on every answer (the
// presets learn them), a fifth of the answers failing (500, or Anthropic's
// 529), which steady retries with the SDK's retries off, and an account
// out of quota, which is not retried.

const (
	chatModel  = "gpt-4o-mini"
	quotaModel = "gpt-out-of-quota"
	embedModel = "text-embedding-3-small"
	claude     = "claude-sonnet-4-5"
	claudeBusy = "claude-opus-4-1"
)

// noisyBreaker is the breaker setting of the tests whose server fails a
// fifth of all answers at random: a failure share that is noise, not an
// outage. The default rule (five failures in a row) trips on such noise in
// about 2% of runs of 70 attempts, and then, as designed, refuses the rest
// of the burst for 30 s, which is the breaker's business and tested in
// package breaker, not the SDKs'. Here only a model failing 90% of at
// least 20 attempts trips. (claudeBusy, which fails every attempt, is
// served by its fallback once its retries are spent, breaker or not.)
var noisyBreaker = []breaker.Option{breaker.WithConsecutiveFailures(0), breaker.WithFailureRatio(0.9, 20)}

// prompt is the text of request i of caller: numbered, so that every
// request meets a fate of its own at the server (whose fault draws hash
// the body), as a workload's requests do.
func prompt(caller, i int) string { return fmt.Sprintf("Say hello, %d.", caller*interopPerKey+i) }

// presetServer starts the simulated provider over loopback.
func presetServer(t *testing.T, cfg conformance.Config) (*conformance.Server, string, *http.Transport) {
	t.Helper()
	srv := conformance.NewServer(cfg)
	hs := httptest.NewServer(srv)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		base.CloseIdleConnections()
		hs.Close()
	})
	return srv, hs.URL, base
}

// retryCounter counts the retries of a preset, from its events.
func retryCounter(n *atomic.Int64) transport.EventFunc {
	return func(e transport.Event) {
		if e.Kind == transport.EventRetry {
			n.Add(1)
		}
	}
}

func openAIServer(t *testing.T) (*conformance.Server, string, *http.Transport) {
	t.Helper()
	return presetServer(t, conformance.Config{
		Dialect: conformance.DialectOpenAI,
		Headers: conformance.HeaderOpenAI,
		Models:  []string{chatModel, quotaModel, embedModel},
		Limits: map[string]conformance.Limit{
			conformance.Chat:       {RPM: 300, Burst: 300, TPM: 100000, TokenBurst: 100000},
			conformance.Embeddings: {RPM: 300, Burst: 300},
		},
		Faults: []conformance.Fault{
			{Kind: conformance.FaultQuota, Model: quotaModel},
			{Kind: conformance.FaultStatus, Status: 500, Share: 0.2},
		},
		Seed: 3,
	})
}

func TestPresetOpenAIGo(t *testing.T) {
	srv, url, base := openAIServer(t)
	var retries atomic.Int64
	hc := &http.Client{Transport: openai.NewTransport(base, openai.WithBaseURL(url+"/v1"),
		openai.WithEvents(retryCounter(&retries)), openai.WithBreaker(noisyBreaker...))}
	clients := make([]openaiv3.Client, interopCallers)
	for c := range clients {
		clients[c] = openaiv3.NewClient(option.WithHTTPClient(hc), option.WithMaxRetries(0),
			option.WithBaseURL(url+"/v1/"), option.WithAPIKey(interopKey(c)))
	}
	var usage atomic.Int64
	errs := interopBurst(func(ctx context.Context, caller, i int) error {
		params := openaiv3.ChatCompletionNewParams{
			Model:    chatModel,
			Messages: []openaiv3.ChatCompletionMessageParamUnion{openaiv3.UserMessage(prompt(caller, i))},
		}
		if i%2 == 1 { // a stream, with the usage in its last chunk
			params.StreamOptions.IncludeUsage = openaiv3.Bool(true)
			stream := clients[caller].Chat.Completions.NewStreaming(ctx, params)
			var acc openaiv3.ChatCompletionAccumulator
			for stream.Next() {
				acc.AddChunk(stream.Current())
			}
			if stream.Err() == nil {
				assert.NotEmpty(t, acc.Choices[0].Message.Content)
				usage.Add(acc.Usage.CompletionTokens)
			}
			return stream.Err()
		}
		c, err := clients[caller].Chat.Completions.New(ctx, params)
		if err == nil {
			assert.Equal(t, chatModel, c.Model)
			usage.Add(c.Usage.CompletionTokens)
		}
		return err
	})
	interopCheck5xx(t, srv, errs, retries.Load())
	assert.Positive(t, usage.Load(), "the answers' usage reached the SDK")

	// An account out of quota: the SDK gets the 429 at once, not retried.
	before := srv.Stats().Arrivals
	_, err := clients[0].Chat.Completions.New(context.Background(), openaiv3.ChatCompletionNewParams{
		Model: quotaModel, Messages: []openaiv3.ChatCompletionMessageParamUnion{openaiv3.UserMessage("Hi.")},
	})
	var apiErr *openaiv3.Error
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
	assert.Equal(t, "insufficient_quota", apiErr.Code)
	assert.Equal(t, 1, srv.Stats().Arrivals-before, "never retried")
}

func TestPresetGoOpenAI(t *testing.T) {
	srv, url, base := openAIServer(t)
	var retries atomic.Int64
	hc := &http.Client{Transport: openai.NewTransport(base, openai.WithBaseURL(url+"/v1"),
		openai.WithEvents(retryCounter(&retries)), openai.WithBreaker(noisyBreaker...))}
	clients := make([]*goopenai.Client, interopCallers)
	for c := range clients {
		cfg := goopenai.DefaultConfig(interopKey(c))
		cfg.BaseURL = url + "/v1"
		cfg.HTTPClient = hc // go-openai has no retries of its own
		clients[c] = goopenai.NewClientWithConfig(cfg)
	}
	errs := interopBurst(func(ctx context.Context, caller, i int) error {
		client := clients[caller]
		if i >= 7 {
			e, err := client.CreateEmbeddings(ctx, goopenai.EmbeddingRequestStrings{
				Model: goopenai.EmbeddingModel(embedModel), Input: []string{"first text", "second text"},
			})
			if err == nil {
				assert.Len(t, e.Data, 2)
			}
			return err
		}
		c, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model:    chatModel,
			Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: prompt(caller, i)}},
		})
		if err == nil {
			assert.NotEmpty(t, c.Choices)
		}
		return err
	})
	interopCheck5xx(t, srv, errs, retries.Load())

	before := srv.Stats().Arrivals
	_, err := clients[0].CreateChatCompletion(context.Background(), goopenai.ChatCompletionRequest{
		Model: quotaModel, Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Hi."}},
	})
	var apiErr *goopenai.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, "insufficient_quota", apiErr.Code)
	assert.Equal(t, 1, srv.Stats().Arrivals-before, "never retried")
}

func TestPresetAnthropicSDK(t *testing.T) {
	srv, url, base := presetServer(t, conformance.Config{
		Dialect: conformance.DialectAnthropic,
		Headers: conformance.HeaderAnthropic | conformance.HeaderRetryAfter,
		Models:  []string{claude, claudeBusy},
		Limits: map[string]conformance.Limit{conformance.Messages: {RPM: 300, Burst: 300,
			TPM: 100000, TokenBurst: 100000, OutputTPM: 50000, OutputTokenBurst: 50000}},
		Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 529, Model: claudeBusy},
			{Kind: conformance.FaultStatus, Status: 529, Share: 0.2},
		},
		Seed: 4,
	})
	var retries atomic.Int64
	hc := &http.Client{Transport: anthropic.NewTransport(base, anthropic.WithBaseURL(url+"/v1"),
		anthropic.WithEvents(retryCounter(&retries)), anthropic.WithFallback(claudeBusy, claude),
		anthropic.WithBreaker(noisyBreaker...))}
	clients := make([]anthropicsdk.Client, interopCallers)
	for c := range clients {
		clients[c] = anthropicsdk.NewClient(anthropicoption.WithHTTPClient(hc), anthropicoption.WithMaxRetries(0),
			anthropicoption.WithBaseURL(url+"/"), anthropicoption.WithAPIKey(interopKey(c)))
	}
	var output atomic.Int64
	errs := interopBurst(func(ctx context.Context, caller, i int) error {
		params := anthropicsdk.MessageNewParams{
			Model:     claude,
			MaxTokens: 256,
			Messages:  []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock(prompt(caller, i)))},
		}
		if i%2 == 1 { // a stream: the usage in message_start and message_delta
			stream := clients[caller].Messages.NewStreaming(ctx, params)
			var msg anthropicsdk.Message
			for stream.Next() {
				if err := msg.Accumulate(stream.Current()); err != nil {
					return err
				}
			}
			if stream.Err() == nil {
				assert.NotEmpty(t, msg.Content)
				output.Add(msg.Usage.OutputTokens)
			}
			return stream.Err()
		}
		m, err := clients[caller].Messages.New(ctx, params)
		if err == nil {
			assert.Equal(t, "end_turn", string(m.StopReason))
			output.Add(m.Usage.OutputTokens)
		}
		return err
	})
	interopCheck5xx(t, srv, errs, retries.Load())
	assert.Positive(t, output.Load(), "the answers' usage reached the SDK")
	for _, a := range srv.Arrivals() {
		require.Contains(t, a.Key, "test-", "the SDK's x-api-key reached the server")
	}

	// A model overloaded for good: retried, then served by the next of its
	// chain, the SDK none the wiser.
	m, err := clients[0].Messages.New(context.Background(), anthropicsdk.MessageNewParams{
		Model: claudeBusy, MaxTokens: 64,
		Messages: []anthropicsdk.MessageParam{anthropicsdk.NewUserMessage(anthropicsdk.NewTextBlock("Hi."))},
	})
	require.NoError(t, err)
	assert.Equal(t, claude, string(m.Model), "the fallback served it")
}

// interopCheck5xx asserts that every request succeeded though the server
// failed some, and that every retry was steady's: the SDK's own are off.
func interopCheck5xx(t *testing.T, srv *conformance.Server, errs []error, retries int64) {
	t.Helper()
	for _, err := range errs {
		var api *preset.APIError
		assert.False(t, errors.As(err, &api))
		assert.NoError(t, err)
	}
	st := srv.Stats()
	assert.Equal(t, interopRequests, st.OK, "every request succeeded")
	assert.Positive(t, st.ServerErrors, "the server failed some")
	assert.Equal(t, int64(st.Arrivals-interopRequests), retries, "every retry was steady's")
}
