package preset_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/anthropic"
	"github.com/steadyapi/steady/openai"
	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/together"
	"github.com/steadyapi/steady/transport"
)

// Every route a preset documents for WithRate (its Route constants) takes
// a rate; another name fails every request with an error that names it,
// and nothing is sent.
func TestEveryPresetsRoutesTakeARate(t *testing.T) {
	for _, p := range []struct {
		spec   preset.Spec
		routes []string
		url    string
	}{
		{together.Spec(), []string{together.RouteChat, together.RouteCompletions, together.RouteEmbeddings, together.RouteImages},
			together.DefaultBaseURL + "/chat/completions"},
		{openai.Spec(), []string{openai.RouteChat, openai.RouteCompletions, openai.RouteEmbeddings, openai.RouteResponses, openai.RouteImages},
			openai.DefaultBaseURL + "/chat/completions"},
		{anthropic.Spec(), []string{anthropic.RouteMessages}, anthropic.DefaultBaseURL + "/messages"},
	} {
		for _, route := range append(p.routes, "chat/completions") {
			sent := 0
			rt := preset.New(p.spec, transport.Func(func(req *http.Request) (*http.Response, error) {
				sent++
				return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: req}, nil
			}), preset.WithAPIKey("k"), preset.WithRate(route, 600))
			req, err := http.NewRequest(http.MethodPost, p.url, strings.NewReader(`{"model":"m","max_tokens":16,"messages":[]}`))
			require.NoError(t, err)
			resp, err := rt.RoundTrip(req)
			if route == "chat/completions" {
				assert.ErrorContains(t, err, p.spec.Name+`: WithRate: no rate-limited route named "chat/completions"`)
				assert.Zero(t, sent, p.spec.Name)
				continue
			}
			require.NoError(t, err, "%s %s", p.spec.Name, route)
			_ = resp.Body.Close()
			assert.Equal(t, 1, sent, "%s %s", p.spec.Name, route)
		}
	}
}
