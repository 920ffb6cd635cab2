package transport

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An Info emptied for another request keeps nothing of the last one's
// answer, and keeps the room its shared reading had: the next request
// reads each answer anew until it asks to share (and then costs no
// allocation), as a new Info would.
func TestAnEmptiedInfoSharesOnlyWhenAsked(t *testing.T) {
	const name = "X-Ratelimit-Remaining-Requests"
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	resp := &http.Response{StatusCode: 200, Header: http.Header{name: {"7"}}}
	i := &Info{Model: "m"}
	i.ShareSignals()
	require.Equal(t, 7.0, i.Signals(resp, now).Requests.Remaining)
	shared := i.shared
	require.NotNil(t, shared)

	i.empty()
	assert.Empty(t, i.Model)
	assert.Nil(t, i.verdictOf, "no answer is kept")
	assert.Same(t, shared, i.shared, "the room is kept")
	assert.Equal(t, sharedSignals{}, *i.shared, "emptied")

	resp.Header[name] = []string{"8"}
	assert.Equal(t, 8.0, i.Signals(resp, now).Requests.Remaining, "not the last request's reading")
	resp.Header[name] = []string{"9"}
	assert.Equal(t, 9.0, i.Signals(resp, now).Requests.Remaining, "not shared: read each time")
	i.ShareSignals()
	assert.Same(t, shared, i.shared, "asked again, the room is used")
	assert.Equal(t, 9.0, i.Signals(resp, now).Requests.Remaining)
	resp.Header[name] = []string{"3"} // changed in place, against the contract
	assert.Equal(t, 9.0, i.Signals(resp, now).Requests.Remaining, "shared: the same answer is not read again")
}
