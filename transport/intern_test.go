package transport

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInternedNamesAreFoundWhateverTheirSlot: names that share a slot of
// the recent cache, or were pushed out of it, are still found by their
// bytes alone, each as the one string kept for it; a name never seen, or
// one that differs from a kept one in a byte the slot does not look at,
// is not taken for it.
func TestInternedNamesAreFoundWhateverTheirSlot(t *testing.T) {
	var names []string
	for i := range 3 * len(recent) { // more names than slots: slots are shared
		names = append(names, fmt.Sprintf("intern-test/model-%03d-x", i))
	}
	kept := make(map[string]string)
	for _, n := range names {
		kept[n] = modelName([]byte(n))
	}
	for range 2 {
		for _, n := range names {
			got, ok := internedName([]byte(n))
			require.True(t, ok, n)
			assert.Equal(t, n, got)
			assert.Equal(t, unsafe.StringData(kept[n]), unsafe.StringData(got), "%s: the string kept, not a copy", n)
		}
	}
	// Same length, same first, middle and last bytes as a kept name: the
	// same slot, another name.
	_, ok := internedName([]byte("intern-test/model-000-y"[:len(names[0])-2] + "9x"))
	assert.False(t, ok)
	_, ok = internedName([]byte("intern-test/never-seen"))
	assert.False(t, ok)
	_, ok = internedName(nil)
	assert.False(t, ok)
}
