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
	case p == "/v1/messages": // Anthropic's every call: no segment to rank
		return EndpointMessages
	}
	// The rest is told by the path's segments (each after a slash), read
	// in one pass rather than searched for one by one: an "images" or
	// "fine_tuning" segment with more after it, a segment that starts with
	// "fine-tunes", a "batches" or "models" segment anywhere, or the last
	// segment, ranked in that order.
	var images, fine, batches, models bool
	last := ""
	for i := strings.IndexByte(p, '/'); i >= 0; {
		rest := p[i+1:]
		j := strings.IndexByte(rest, '/')
		seg := rest
		if j >= 0 {
			seg = rest[:j]
		}
		switch {
		case seg == "images":
			images = images || j >= 0
		case seg == "fine_tuning":
			fine = fine || j >= 0
		case seg == "batches":
			batches = true
		case seg == "models":
			models = true
		case strings.HasPrefix(seg, "fine-tunes"):
			fine = true
		}
		if j < 0 {
			last = seg
			break
		}
		i += 1 + j
	}
	switch {
	case images:
		return EndpointImages
	case fine:
		return EndpointFineTunes
	case batches:
		return EndpointBatches
	case models:
		return EndpointModels
	case last == "messages":
		return EndpointMessages
	case last == "responses":
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
	return func(next http.RoundTripper) http.RoundTripper {
		r := &routed{classify: classify, fallback: next, fallbackInfo: infoOf(next), next: next}
		for name, mw := range routes {
			if mw == nil {
				continue
			}
			rt := mw(next)
			if name == EndpointOther {
				r.fallback, r.fallbackInfo = rt, infoOf(rt)
				continue
			}
			r.built = append(r.built, namedRoute{name, rt, infoOf(rt)})
		}
		return r
	}
}

type routed struct {
	classify func(*http.Request) string
	// built is searched in order: routes are few, and their names (the
	// Endpoint constants) compare faster than a map hashes them.
	built        []namedRoute
	fallback     http.RoundTripper // routes[EndpointOther], or next
	fallbackInfo InfoRoundTripper  // fallback, when it is one (see namedRoute)
	next         http.RoundTripper
}

// namedRoute is the stack of one route.
type namedRoute struct {
	name string
	rt   http.RoundTripper
	// info is rt when it is an InfoRoundTripper, found once: each request
	// is handed to it directly, as Forward would, without Forward's look
	// at its type on every request.
	info InfoRoundTripper
}

// infoOf returns rt when it is an InfoRoundTripper, else nil.
func infoOf(rt http.RoundTripper) InfoRoundTripper {
	n, _ := rt.(InfoRoundTripper)
	return n
}

func (r *routed) RoundTrip(req *http.Request) (*http.Response, error) {
	return r.RoundTripInfo(req, InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected).
func (r *routed) RoundTripInfo(req *http.Request, info *Info) (*http.Response, error) {
	var name string
	switch {
	case r.classify != nil:
		name = r.classify(req)
	case info.describes(req):
		name = info.Endpoint
	default:
		name = Endpoint(req)
	}
	for i := range r.built {
		if b := &r.built[i]; b.name == name {
			if b.info != nil {
				return b.info.RoundTripInfo(req, info)
			}
			return Forward(b.rt, req, info)
		}
	}
	if r.fallbackInfo != nil {
		return r.fallbackInfo.RoundTripInfo(req, info)
	}
	return Forward(r.fallback, req, info)
}

// CloseIdleConnections closes the idle connections of every route's
// transport, and of the one they all wrap.
func (r *routed) CloseIdleConnections() {
	for _, b := range r.built {
		CloseIdleConnections(b.rt)
	}
	if r.fallback != r.next {
		CloseIdleConnections(r.fallback)
	}
	CloseIdleConnections(r.next)
}
