package conformance_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// A status without a reason phrase of its own (Anthropic's 529) has the
// same Status in memory as over HTTP, where net/http writes "status code
// 529" for it: not "529 " with nothing after the space.
func TestAStatusWithoutATextReadsAsOverHTTP(t *testing.T) {
	cfg := conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultStatus, Status: 529}}}
	base, client := srvHTTP(t, conformance.NewServer(cfg))
	overHTTP, err := srvPost(context.Background(), t, client, base+"/v1/chat/completions", srvChatBody)
	require.NoError(t, err)
	require.NoError(t, overHTTP.Body.Close())
	require.Equal(t, 529, overHTTP.StatusCode)

	req, err := http.NewRequest(http.MethodPost, "https://api.together.xyz/v1/chat/completions", strings.NewReader(srvChatBody))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer k")
	inMemory, err := conformance.NewServer(cfg).RoundTrip(req)
	require.NoError(t, err)
	require.NoError(t, inMemory.Body.Close())
	assert.Equal(t, overHTTP.Status, inMemory.Status)
}
