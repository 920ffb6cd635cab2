package breaker

import (
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// heapAfter is the live heap once f has run, after a collection.
func heapAfter(f func()) uint64 {
	f()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// A request's model is the client's to name, and may be as long as the
// body read to find it. The breakers kept are bounded in count, and each
// must be bounded in size: one per huge model name must not keep the name.
func TestABreakerDoesNotKeepAHugeModelName(t *testing.T) {
	const models, size = 32, 2 << 20 // 64 MiB of model names
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"default key", nil},
		{"WithKey", []Option{WithKey(func(_ *http.Request, model string) string { return fmt.Sprint(len(model), model[:8]) })}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rt http.RoundTripper
			before := heapAfter(func() {})
			after := heapAfter(func() {
				rt = New(append(tc.opts, WithEvents(func(transport.Event) {}))...)(answer(200))
				for i := range models {
					model := fmt.Sprintf("%08d", i) + strings.Repeat("x", size)
					require.NoError(t, roundTrip(t, rt, model))
				}
			})
			require.Equal(t, models, keys(rt))
			assert.Less(t, int64(after)-int64(before), int64(models*size/4),
				"the breakers kept hold %d MiB", (int64(after)-int64(before))>>20)
			runtime.KeepAlive(rt)
		})
	}
}
