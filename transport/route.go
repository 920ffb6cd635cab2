package transport

import (
	"net/http"
	"strings"
)

// Endpoint names returned by [Endpoint] for the OpenAI-compatible API
// surface. They are the keys of the routes given to [Route].
const (
	EndpointChat        = "chat"        // /chat/completions
	EndpointCompletions = "completions" // /completions
	EndpointEmbeddings  = "embeddings"  // /embeddings
	EndpointImages      = "images"      // /images/generations, /images/edits, ...
	EndpointFineTunes   = "fine-tunes"  // /fine-tunes..., /fine_tuning/jobs...
	EndpointBatches     = "batches"     // /batches...
	EndpointModels      = "models"      // /models...
	EndpointMessages    = "messages"    // /messages (Anthropic's chat)
	EndpointResponses   = "responses"   // /responses (OpenAI's Responses API)
	EndpointOther       = ""            // anything else (files, audio, ...)
)

// Endpoint names the API endpoint of req from its URL path, whatever the
// prefix before it (/v1, /openai/v1, a proxy's path): one of the Endpoint*
// constants, [EndpointOther] when none fits (a request without a URL
// among them, which net/http refuses with an error, not a panic).
func Endpoint(req *http.Request) string {
	if req == nil || req.URL == nil {
		return EndpointOther
	}
	if info := InfoOf(req); info != nil {
		return info.Endpoint // read once by Inspect
	}
	return endpointOf(req.URL.Path)
}

func endpointOf(path string) string {
	p := strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		return EndpointChat
	case strings.HasSuffix(p, "/completions"):
		return EndpointCompletions
	case strings.HasSuffix(p, "/embeddings"):
		return EndpointEmbeddings
	case strings.Contains(p, "/images/"):
		return EndpointImages
	case strings.Contains(p, "/fine-tunes"), strings.Contains(p, "/fine_tuning/"):
		return EndpointFineTunes
	case strings.HasSuffix(p, "/batches"), strings.Contains(p, "/batches/"):
		return EndpointBatches
	case strings.HasSuffix(p, "/models"), strings.Contains(p, "/models/"):
		return EndpointModels
	case strings.HasSuffix(p, "/messages"):
		return EndpointMessages
	case strings.HasSuffix(p, "/responses"):
		return EndpointResponses
	}
	return EndpointOther
}

// Route returns a middleware that sends each request through the
// middleware of its endpoint, as named by classify (nil means [Endpoint]).
// Each route's middleware is applied once, when Route's middleware wraps
// its next RoundTripper, so every route keeps its own state (its own
// limiter, breakers, retry budget). A request whose name has no route goes
// through routes[EndpointOther] when there is one, else straight to next.
func Route(classify func(*http.Request) string, routes map[string]Middleware) Middleware {
	if classify == nil {
		classify = Endpoint
	}
	return func(next http.RoundTripper) http.RoundTripper {
		built := make(map[string]http.RoundTripper, len(routes))
		for name, mw := range routes {
			if mw != nil {
				built[name] = mw(next)
			}
		}
		fallback, ok := built[EndpointOther]
		if !ok {
			fallback = next
		}
		return &routed{classify: classify, built: built, fallback: fallback, next: next}
	}
}

type routed struct {
	classify func(*http.Request) string
	built    map[string]http.RoundTripper
	fallback http.RoundTripper
	next     http.RoundTripper
}

func (r *routed) RoundTrip(req *http.Request) (*http.Response, error) {
	if rt, ok := r.built[r.classify(req)]; ok {
		return rt.RoundTrip(req)
	}
	return r.fallback.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of every route's
// transport, and of the one they all wrap.
func (r *routed) CloseIdleConnections() {
	for _, rt := range r.built {
		CloseIdleConnections(rt)
	}
	CloseIdleConnections(r.next)
}
