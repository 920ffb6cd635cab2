package interop

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	anthropicsdk "github.com/anthropics/anthropic-sdk-go/v2"
	anthropicoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	openaiv3 "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/openai"
)

// The Go SDKs this module pins send no Idempotency-Key, not even on a
// batch's creation: the presets' Creates rule (no second send after a 500,
// 502 or 504 without one) applies to the SDKs' requests, which are sent
// once and handed the 500, whatever the presets' docs said of "the key the
// SDKs send".
func TestTheSDKsSendNoIdempotencyKey(t *testing.T) {
	var mu sync.Mutex
	var got []http.Header
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`))
	}))
	base := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(func() { base.CloseIdleConnections(); hs.Close() })
	oc := openaiv3.NewClient(option.WithHTTPClient(&http.Client{Transport: openai.NewTransport(base, openai.WithBaseURL(hs.URL+"/v1"))}),
		option.WithMaxRetries(0), option.WithBaseURL(hs.URL+"/v1/"), option.WithAPIKey("k"))
	_, err := oc.Batches.New(context.Background(), openaiv3.BatchNewParams{CompletionWindow: "24h", Endpoint: "/v1/chat/completions", InputFileID: "file-1"})
	assert.Error(t, err)
	ac := anthropicsdk.NewClient(anthropicoption.WithHTTPClient(&http.Client{Transport: anthropic.NewTransport(base, anthropic.WithBaseURL(hs.URL+"/v1"))}),
		anthropicoption.WithMaxRetries(0), anthropicoption.WithBaseURL(hs.URL+"/"), anthropicoption.WithAPIKey("k"))
	_, err = ac.Messages.Batches.New(context.Background(), anthropicsdk.MessageBatchNewParams{})
	assert.Error(t, err)
	assert.Len(t, got, 2, "each creation sent once: not again after the 500")
	for _, h := range got {
		assert.Empty(t, h.Get("Idempotency-Key"), h.Get("User-Agent"))
		assert.Equal(t, "0", h.Get("X-Stainless-Retry-Count"), "the SDK's header passes unchanged")
	}
}
