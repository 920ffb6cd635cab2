package transport_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// A bounded key names a limiter or a breaker in errors, events, logs and a
// store's key names (Redis): a key that is valid UTF-8 must stay so when it
// is cut, whatever the width of the character its bound falls in, and
// wherever in that character it falls.
func TestABoundedKeyIsCutBetweenCharacters(t *testing.T) {
	for _, char := range []string{"é", "€", "😀"} {
		for lead := range utf8.UTFMax {
			key := strings.Repeat("a", lead) + strings.Repeat(char, transport.MaxKeyLen)
			bound := transport.BoundKey(key)
			assert.True(t, utf8.ValidString(bound), "%q after %d bytes of ASCII: %q", char, lead, bound)
			assert.LessOrEqual(t, len(bound), transport.MaxKeyLen)
			prefix, _, ok := strings.Cut(bound, "…#")
			require.True(t, ok, bound)
			assert.True(t, strings.HasPrefix(key, prefix), "%q begins the key", prefix)
			assert.Greater(t, len(prefix), 64-utf8.UTFMax, "%q: at most a character's bytes are dropped", prefix)
		}
	}
}

// A bounded key still tells its key apart: keys that differ only past the
// bound, or only in the bytes of the character the bound cuts, are bounded
// to different keys; a key within the bound is itself.
func TestABoundedKeyStaysDistinct(t *testing.T) {
	long := strings.Repeat("a", 62) + "€" + strings.Repeat("b", transport.MaxKeyLen)
	seen := map[string]string{}
	for _, key := range []string{
		long,
		long + "c",
		strings.Repeat("a", 62) + "₤" + strings.Repeat("b", transport.MaxKeyLen), // differs at byte 63 only
		strings.Repeat("a", 62) + "é" + strings.Repeat("b", transport.MaxKeyLen+1),
		strings.Repeat("a", 63) + "é" + strings.Repeat("b", transport.MaxKeyLen),
	} {
		bound := transport.BoundKey(key)
		if other, ok := seen[bound]; ok {
			t.Errorf("%.80q and %.80q are both bounded to %q", key, other, bound)
		}
		seen[bound] = key
		assert.Equal(t, bound, transport.BoundKey(key), "the same key, the same bound key")
	}
	short := strings.Repeat("€", transport.MaxKeyLen/3)
	assert.Equal(t, short, transport.BoundKey(short), "a key within the bound is kept")
}
