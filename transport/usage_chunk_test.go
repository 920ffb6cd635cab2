package transport_test

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// A "usage" key is found however the body is cut, even where the reading
// before it left an escaping backslash just before the bytes it kept (a
// "\n" in the text) and found a "usage" that was a value, not a key: the
// key after it, cut in two, is not taken for an escaped one.
func TestWatchUsageKeyAfterAUsageValueCutInTwo(t *testing.T) {
	pieces := []string{
		`{"a":"x\nbcdef`,     // ends 6 bytes after a backslash: those 6 are kept
		`g","b":"usage","us`, // "usage" as a value, then the key, cut
		`age":{"prompt_tokens":3,"completion_tokens":4}}`,
	}
	body := strings.Join(pieces, "")
	require.True(t, json.Valid([]byte(body)))

	var whole, cut usageSeen
	_, err := io.ReadAll(transport.WatchUsage(io.NopCloser(strings.NewReader(body)), whole.done))
	require.NoError(t, err)
	_, err = io.ReadAll(transport.WatchUsage(io.NopCloser(&splitReader{pieces: pieces}), cut.done))
	require.NoError(t, err)

	_, u, ok := whole.get()
	require.True(t, ok)
	assert.Equal(t, transport.Usage{Input: 3, Output: 4}, u)
	_, u, ok = cut.get()
	assert.True(t, ok, "the usage is found in the body read in pieces too")
	assert.Equal(t, transport.Usage{Input: 3, Output: 4}, u)
}
