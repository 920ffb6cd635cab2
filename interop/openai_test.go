package interop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	openaiv3 "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	goopenai "github.com/sashabaranov/go-openai"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// The interoperability tests run in real time over loopback, so they keep
// small: 5 callers, each with its own API key, send 10 requests back to
// back against a limit of 5 per second per key; the 6th to 10th of each are
// refused once and retried after the reset. One caller per key makes the
// outcome certain: a retry-only stack with several callers on one key
// could lose its retries to the others, which is what a limiter is for.
const (
	interopCallers  = 5
	interopPerKey   = 10
	interopRequests = interopCallers * interopPerKey
)

// interopSetup starts the simulated provider over loopback, at 5 chat
// and embedding requests per second per key, and an http.Client whose
// transport is steady's retry decorator around a copy of
// http.DefaultTransport. retries counts the retries the decorator makes.
func interopSetup(t *testing.T) (srv *conformance.Server, url string, client *http.Client, retries *atomic.Int64) {
	t.Helper()
	srv = conformance.NewServer(conformance.Config{Limits: map[string]conformance.Limit{conformance.Chat: {RPM: 300}, conformance.Embeddings: {RPM: 300}}})
	hs := httptest.NewServer(srv)
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() {
		base.CloseIdleConnections()
		hs.Close()
	})
	retries = new(atomic.Int64)
	rt := transport.Chain(base, retry.New(retry.WithEvents(func(e transport.Event) {
		if e.Kind == transport.EventRetry {
			retries.Add(1)
		}
	})))
	return srv, hs.URL, &http.Client{Transport: rt}, retries
}

// interopBurst runs interopCallers callers at once, caller c calling
// do(ctx, c, i) for i from 0 to interopPerKey-1, and returns the errors.
func interopBurst(do func(ctx context.Context, caller, i int) error) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for c := range interopCallers {
		wg.Go(func() {
			for i := range interopPerKey {
				if err := do(context.Background(), c, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func interopKey(caller int) string { return "test-" + strconv.Itoa(caller) }

// interopCheck asserts that every request succeeded, that the server had
// to refuse some (so the burst did test retrying), and that every retry
// was steady's: the SDK's own are off.
func interopCheck(t *testing.T, srv *conformance.Server, errs []error, retries int64) {
	t.Helper()
	assert.Empty(t, errs)
	st := srv.Stats()
	assert.Equal(t, interopRequests, st.OK, "every request succeeded")
	assert.Positive(t, st.TooMany, "the burst went over the limit")
	assert.Equal(t, int64(st.Arrivals-interopRequests), retries, "every retry was steady's")
}

func TestInteropOpenAIGo(t *testing.T) {
	srv, url, hc, retries := interopSetup(t)
	clients := make([]openaiv3.Client, interopCallers)
	for c := range clients {
		clients[c] = openaiv3.NewClient(
			option.WithHTTPClient(hc),
			option.WithMaxRetries(0),
			option.WithBaseURL(url+"/v1/"),
			option.WithAPIKey(interopKey(c)),
		)
	}
	errs := interopBurst(func(ctx context.Context, caller, i int) error {
		c, err := clients[caller].Chat.Completions.New(ctx, openaiv3.ChatCompletionNewParams{
			Model:    conformance.ScenarioChatModel,
			Messages: []openaiv3.ChatCompletionMessageParamUnion{openaiv3.UserMessage("Say hello.")},
		})
		if err == nil {
			assert.Equal(t, conformance.ScenarioChatModel, c.Model)
			assert.NotEmpty(t, c.Choices)
		}
		return err
	})
	interopCheck(t, srv, errs, retries.Load())
	for _, a := range srv.Arrivals() {
		require.Contains(t, a.Key, "test-", "the SDK's key reached the server")
	}
}

func TestInteropGoOpenAI(t *testing.T) {
	srv, url, hc, retries := interopSetup(t)
	clients := make([]*goopenai.Client, interopCallers)
	for c := range clients {
		cfg := goopenai.DefaultConfig(interopKey(c))
		cfg.BaseURL = url + "/v1"
		cfg.HTTPClient = hc // go-openai has no retries of its own
		clients[c] = goopenai.NewClientWithConfig(cfg)
	}
	errs := interopBurst(func(ctx context.Context, caller, i int) error {
		client := clients[caller]
		if i >= 7 { // the last three are embeddings, limited apart from chat
			e, err := client.CreateEmbeddings(ctx, goopenai.EmbeddingRequestStrings{
				Model: goopenai.EmbeddingModel(conformance.ScenarioEmbedModel),
				Input: []string{"first text", "second text"},
			})
			if err == nil {
				assert.Len(t, e.Data, 2)
			}
			return err
		}
		c, err := client.CreateChatCompletion(ctx, goopenai.ChatCompletionRequest{
			Model:    conformance.ScenarioChatModel,
			Messages: []goopenai.ChatCompletionMessage{{Role: goopenai.ChatMessageRoleUser, Content: "Say hello."}},
		})
		if err == nil {
			assert.NotEmpty(t, c.Choices)
		}
		return err
	})
	interopCheck(t, srv, errs, retries.Load())
}
