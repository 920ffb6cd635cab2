package together_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// bodyOf is a chat request body of about size bytes, its model last, as
// openai-go writes it: the whole body must be read to find the model.
func bodyOf(size int, model string) []byte {
	b := append([]byte(`{"messages":[{"role":"user","content":"`), bytes.Repeat([]byte("lorem ipsum "), size/12)...)
	return append(b, `"}],"model":"`+model+`"}`...)
}

// allocated returns the bytes allocated while f ran, and the most the heap
// held, sampled as f runs (outside a synctest bubble: the sampler never
// sleeps).
func allocated(t *testing.T, f func()) (total, peak uint64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var m runtime.MemStats
		var top uint64
		for {
			runtime.ReadMemStats(&m)
			top = max(top, m.HeapAlloc)
			select {
			case <-stop:
				done <- top
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	f()
	close(stop)
	top := <-done
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, top - before.HeapAlloc
}

// A 40 MiB body without GetBody (an io.Pipe), over the 32 MiB the preset
// buffers: read once, sent once and whole, and held in memory once at
// most, however many decorators the preset stacks (each buffered it again
// before: 200 MiB).
func TestFaultHugeRequestBodyWithoutGetBody(t *testing.T) {
	const size = 40 << 20
	body := bodyOf(size, "meta-llama/Llama-3.3-70B-Instruct-Turbo")
	var got atomic.Int64
	base := transport.Func(func(r *http.Request) (*http.Response, error) {
		n, err := io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		got.Store(n)
		if err != nil {
			return nil, err
		}
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	rt := together.NewTransport(base, together.WithAPIKey("k"),
		together.WithFallback("meta-llama/Llama-3.3-70B-Instruct-Turbo", "mistralai/Mixtral-8x7B-Instruct-v0.1"))
	total, peak := allocated(t, func() {
		pr, pw := io.Pipe()
		go func() {
			_, err := pw.Write(body)
			pw.CloseWithError(err)
		}()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, together.DefaultBaseURL+"/chat/completions", pr)
		require.NoError(t, err)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		_ = resp.Body.Close()
	})
	t.Logf("a %d MiB pipe: %d MiB allocated, heap peak %+d MiB", size>>20, total>>20, int64(peak)>>20)
	assert.Equal(t, int64(len(body)), got.Load(), "sent whole")
	assert.Less(t, total, uint64(48<<20), "buffered once: the 32 MiB limit and its pieces")
}

// A 30 MiB in-memory body (with GetBody) through the preset, retried and
// fallen back from: its model is found, its retries and its fallback's
// rewrite are read through GetBody, and no layer copies it (each did
// before: 60 MiB a request, 90 MiB with a fallback).
func TestFaultHugeRequestBodyInMemory(t *testing.T) {
	const size = 30 << 20
	const big, small = "meta-llama/Llama-3.3-70B-Instruct-Turbo", "mistralai/Mixtral-8x7B-Instruct-v0.1"
	body := bodyOf(size, big)
	synctest.Test(t, func(t *testing.T) {
		var sent []int64
		base := transport.Func(func(r *http.Request) (*http.Response, error) {
			n, _ := io.Copy(io.Discard, r.Body)
			_ = r.Body.Close()
			sent = append(sent, n)
			status := http.StatusOK
			if len(sent) <= 2 {
				status = http.StatusServiceUnavailable // the first model, and its one retry
			}
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: r}, nil
		})
		rt := together.NewTransport(base, together.WithAPIKey("k"), together.WithMaxRetries(1),
			together.WithFallback(big, small))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		func() {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, together.DefaultBaseURL+"/chat/completions", bytes.NewReader(body))
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, small, resp.Header.Get(transport.ModelHeader))
			_ = resp.Body.Close()
		}()
		runtime.ReadMemStats(&after)
		total := after.TotalAlloc - before.TotalAlloc
		t.Logf("a %d MiB body in memory, sent %d times: %d KiB allocated", size>>20, len(sent), total>>10)
		require.Len(t, sent, 3)
		assert.Equal(t, int64(len(body)), sent[0])
		assert.Equal(t, int64(len(body)+len(small)-len(big)), sent[2], "the fallback's body, the model swapped")
		assert.Less(t, total, uint64(1<<20), "no copy of the body")
	})
}
