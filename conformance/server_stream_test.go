package conformance_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

const srvStreamBody = `{"model":"` + srvChatModel + `","stream":true,"messages":[{"role":"user","content":"hello"}]}`

// srvEvents reads body one Read at a time, as an SSE client would.
func srvEvents(t *testing.T, body io.Reader) []string {
	t.Helper()
	var events []string
	buf := make([]byte, 64<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			events = append(events, string(buf[:n]))
		}
		if err == io.EOF {
			return events
		}
		require.NoError(t, err)
	}
}

func TestServerStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{StreamInterval: 50 * time.Millisecond})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvStreamBody)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		assert.EqualValues(t, -1, resp.ContentLength)

		start := time.Now()
		events := srvEvents(t, resp.Body)
		require.Greater(t, len(events), 3, "several chunks, one per Read")
		assert.Equal(t, time.Duration(len(events)-1)*50*time.Millisecond, time.Since(start), "paced by StreamInterval")
		assert.Equal(t, "data: [DONE]\n\n", events[len(events)-1])
		var text strings.Builder
		for i, e := range events[:len(events)-1] {
			data, ok := strings.CutPrefix(e, "data: ")
			require.True(t, ok, e)
			require.True(t, strings.HasSuffix(data, "\n\n"), "event %d is whole", i)
			var chunk struct {
				Object  string `json:"object"`
				Model   string `json:"model"`
				Choices []struct {
					Delta struct {
						Role    string `json:"role"`
						Content string `json:"content"`
					} `json:"delta"`
					FinishReason *string `json:"finish_reason"`
				} `json:"choices"`
			}
			require.NoError(t, json.Unmarshal([]byte(data), &chunk), data)
			assert.Equal(t, "chat.completion.chunk", chunk.Object)
			assert.Equal(t, srvChatModel, chunk.Model)
			require.Len(t, chunk.Choices, 1)
			text.WriteString(chunk.Choices[0].Delta.Content)
			assert.Equal(t, i == 0, chunk.Choices[0].Delta.Role == "assistant", "the role comes first only")
			assert.Equal(t, i == len(events)-2, chunk.Choices[0].FinishReason != nil, "the last event finishes")
		}
		assert.NotEmpty(t, text.String())
	})
}

// Closing a stream early, or cancelling its request, ends a Read that
// waits for the next chunk; nothing is left running (goleak checks).
func TestServerStreamEarlyClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{StreamInterval: time.Hour})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvStreamBody)
		require.NoError(t, err)
		buf := make([]byte, 4096)
		n, err := resp.Body.Read(buf)
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(string(buf[:n]), "data: {"))
		done := make(chan error)
		go func() {
			_, err := resp.Body.Read(buf)
			done <- err
		}()
		time.Sleep(time.Minute)
		require.NoError(t, resp.Body.Close())
		assert.Error(t, <-done, "a closed body reads no more")

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err = srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvStreamBody)
		require.NoError(t, err)
		defer resp.Body.Close()
		_, err = resp.Body.Read(buf)
		require.NoError(t, err)
		start := time.Now()
		_, err = resp.Body.Read(buf)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Minute, time.Since(start))
	})
}

func TestServerStreamCompletions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/completions", "k",
			`{"model":"`+srvChatModel+`","stream":true,"prompt":"Once"}`)
		require.NoError(t, err)
		defer resp.Body.Close()
		events := srvEvents(t, resp.Body)
		require.Greater(t, len(events), 3)
		assert.Contains(t, events[0], `"object":"text_completion"`)
		assert.Equal(t, "data: [DONE]\n\n", events[len(events)-1])
		assert.Equal(t, conformance.Stats{Arrivals: 1, OK: 1}, srv.Stats())
	})
}
