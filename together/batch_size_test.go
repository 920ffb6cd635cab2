package together_test

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
	"github.com/steadyapi/steady/together"
)

// bigBatch is a request creating a batch of n requests, each padded so
// that the body is over the 32 MiB a body is buffered to: its body (and
// GetBody's) is written as it is read, so that neither the test nor the
// stack holds it whole unless it reads it all in.
func bigBatch(t *testing.T, jsonl bool, n int) *http.Request {
	t.Helper()
	pad := strings.Repeat("x", 340<<10)
	head, item, sep, tail := `{"requests":[`, `{"custom_id":"r","body":{"messages":[{"role":"user","content":"`+pad+`"}]}}`, ",", `]}`
	if jsonl {
		head, item, sep, tail = `{"input":"`, `{\"custom_id\":\"r\",\"body\":{\"messages\":[{\"role\":\"user\",\"content\":\"`+pad+`\"}]}}`, `\n`, `"}`
	}
	size := int64(len(head) + n*len(item) + (n-1)*len(sep) + len(tail))
	require.Greater(t, size, int64(32<<20))
	body := func() io.ReadCloser {
		parts := []io.Reader{strings.NewReader(head)}
		for i := range n {
			if i > 0 {
				parts = append(parts, strings.NewReader(sep))
			}
			parts = append(parts, strings.NewReader(item))
		}
		return io.NopCloser(io.MultiReader(append(parts, strings.NewReader(tail))...))
	}
	req, err := http.NewRequest("POST", "http://sim.test/v1/batches", body())
	require.NoError(t, err)
	req.ContentLength = size
	req.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	req.Header.Set("Content-Type", "application/json")
	return req
}

// A batch over Together's 100 requests is refused before it is sent
// however large its body: one over the 32 MiB a body is buffered to was
// not counted, and went to the server. It is counted as it is read, not
// held: refusing it costs a small part of its size.
func TestABatchOverTheLimitIsRefusedWhateverTheSizeOfItsBody(t *testing.T) {
	for name, jsonl := range map[string]bool{"requests": false, "JSONL input": true} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, client := simClient(conformance.Config{})
				req := bigBatch(t, jsonl, 101)
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				resp, err := client.Do(req)
				runtime.ReadMemStats(&after)
				if resp != nil {
					resp.Body.Close()
				}
				var tooLarge *together.BatchTooLargeError
				require.ErrorAs(t, err, &tooLarge)
				assert.Equal(t, 101, tooLarge.Requests)
				assert.Zero(t, srv.Stats().Arrivals, "nothing was sent")
				assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(4<<20), "bytes allocated to count the batch")
			})
		})
	}
}

// A batch of 100 requests, as large, is sent: the count is the batch's,
// not its size's.
func TestABatchAtTheLimitIsSentWhateverTheSizeOfItsBody(t *testing.T) {
	for name, jsonl := range map[string]bool{"requests": false, "JSONL input": true} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv, client := simClient(conformance.Config{})
				resp, err := client.Do(bigBatch(t, jsonl, 100).WithContext(context.Background()))
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, 1, srv.Stats().Arrivals)
			})
		})
	}
}

// A body without GetBody is buffered to be counted up to 32 MiB: a larger
// one is sent as it is, uncounted, for the server to judge, as
// BatchTooLargeError says.
func TestABatchWithoutGetBodyPastItsBufferIsSentUncounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv, client := simClient(conformance.Config{})
		req := bigBatch(t, false, 101)
		req.GetBody = nil
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 1, srv.Stats().Arrivals, "sent")
	})
}
