package preset

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// Transport is the [http.RoundTripper] of [New]: a provider's rate limits,
// retries, circuit breakers and model fallback around a base transport.
// It is safe for concurrent use.
type Transport struct {
	stack http.RoundTripper
	// stackInfo is stack when it is a transport.InfoRoundTripper (as the
	// stack assemble builds is): each request is handed to it directly,
	// as transport.Forward would, without Forward's look at its type.
	stackInfo transport.InfoRoundTripper
	auth      Auth
	authValue []string // the header's value: Prefix and the key; nil without a key
	headers   []header // the Spec's: a slice, which is read without a map's iteration
	// keyed is what a request with no header at all is sent with: the
	// key's header and the Spec's, each value clipped. It is never sent
	// itself, only cloned (a small map's clone copies its slots, which
	// costs less than setting each).
	keyed      http.Header
	api        *url.URL // the API root: the key goes to its origin only
	defaultAPI *url.URL // the provider's own root; nil when it has none
	moved      bool     // api is not defaultAPI: requests for that are sent to api
	events     transport.EventFunc
	err        error // a root given that is no absolute URL: every request fails with it
}

// New returns the stack of spec around base (nil means
// [http.DefaultTransport]). base is handed each request as it is
// ([transport.Base]): what the stack read of it is not carried in its
// context.
func New(spec Spec, base http.RoundTripper, opts ...Option) *Transport {
	cfg := config{maxRetries: -1}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if !cfg.apiKeySet && spec.KeyEnv != "" {
		cfg.apiKey = os.Getenv(spec.KeyEnv)
	}
	base = transport.Base(base) // it reads no Info: requests go to it as they are
	t := &Transport{auth: spec.Auth, events: cfg.events}
	for k, v := range spec.Headers {
		// Canonical, as the caller's are looked up: "anthropic-version"
		// in a Spec is not added beside the caller's Anthropic-Version.
		t.headers = append(t.headers, header{http.CanonicalHeaderKey(k), v})
	}
	if spec.BaseURL != "" {
		if u, ok := parseRoot(spec.BaseURL); ok {
			t.defaultAPI, t.api = u, u
		} else {
			// The key would go to no origin: every request would be sent
			// without it, and the server's 401 would not say why.
			t.err = fmt.Errorf("%s: Spec.BaseURL: the API root is not an absolute URL with a host, such as https://api.example.com/v1", providerName(spec))
		}
	}
	if cfg.baseURL != "" && t.err == nil {
		if u, ok := parseRoot(cfg.baseURL); ok && u.User != nil {
			// net/http's Transport sends no credentials from a URL (only
			// its Client does, for the URL it is given): the requests
			// moved to this root would go without them, the others with
			// them and, in Authorization, without the key. The value is
			// not shown.
			t.err = fmt.Errorf("%s: WithBaseURL: the API root carries credentials (user:password@), which are not sent from it: set them in a header of the base transport", providerName(spec))
		} else if ok {
			t.api = u
			t.moved = t.defaultAPI != nil && (!sameOrigin(u, t.defaultAPI) || u.Path != t.defaultAPI.Path)
		} else {
			// Ignored, it would send what was meant for a proxy or a
			// simulator to the provider itself, with the key. The value is
			// not shown: it may hold credentials.
			t.err = fmt.Errorf("%s: WithBaseURL: the API root is not an absolute URL with a host, such as https://api.example.com/v1", providerName(spec))
		}
	}
	if t.err == nil {
		t.err = checkRates(spec, cfg.rates)
	}
	if t.err == nil {
		t.err = checkFallback(spec, cfg.chains)
	}
	if t.auth.Header == "" {
		t.auth = Bearer
	}
	t.auth.Header = http.CanonicalHeaderKey(t.auth.Header)
	// A key read from a file ends with a line end, which net/http refuses
	// in a header: every request would fail, naming no key.
	if key := strings.TrimSpace(cfg.apiKey); key != "" {
		t.authValue = []string{t.auth.Prefix + key}
	}
	if r, ok := cfg.store.(bucket.EventReporter); ok && cfg.events != nil {
		r.ReportEvents(cfg.events) // one hook hears the store too
	}
	if t.authValue != nil {
		t.keyed = make(http.Header, 1+len(t.headers))
		t.keyed[t.auth.Header] = t.authValue[:1:1]
		for _, kv := range t.headers {
			t.keyed[kv.key] = kv.values[:len(kv.values):len(kv.values)]
		}
	}
	t.stack = assemble(spec, base, &cfg)
	t.stackInfo, _ = t.stack.(transport.InfoRoundTripper)
	return t
}

// RoundTrip sends req through the stack. A request for the provider's own
// API root goes to the configured one instead (see [WithBaseURL]); a
// request for the API's origin (scheme, host and port) that does not
// carry the key's header gets the API key, and the Spec's headers it
// lacks. Any other request, a redirect to another host or port among them,
// is sent without the key (it is taken off if a redirect carried it
// there, and the key's header is taken off a redirect from the API
// whoever set it). A header is the request's under any spelling of its
// name ("api-key" for Api-Key, as a map literal keeps it), which net/http
// sends as it is. The caller's request is never modified: the changes are made on
// a copy, which the answer names as its Request when the base transport
// named none.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, t.err
	}
	p := t.plan(req)
	if !p.copies() {
		// The request goes as it is: its Info is one the stack is done
		// with once it returns (no decorator of the stack keeps one),
		// reused rather than allocated.
		return transport.ReadAndSend(req, 0, t.send)
	}
	return transport.ReadCopyAndSend(req, 0, func(c *http.Request) { t.apply(c, p) }, t.send)
}

// send sends req, described by info, through the stack.
func (t *Transport) send(req *http.Request, info *transport.Info) (*http.Response, error) {
	var resp *http.Response
	var err error
	if t.events == nil {
		resp, err = t.forward(req, info)
	} else {
		resp, err = t.observed(req, info)
	}
	if resp != nil && resp.Request == nil {
		// CheckResponse removes the key from an error that echoes it by
		// the request the answer names: a base that names none (a test
		// double, a cache) would leave the key in the error.
		resp.Request = req
	}
	return resp, err
}

// prep is what must change in a copy of the caller's request before it
// is sent (see Transport.plan).
type prep struct {
	move  bool // moved to the API root given
	own   bool // of the API's origin
	add   bool // the key is added
	strip bool // the key's header is taken off
	extra int  // headers the API needs that the request lacks
}

// copies reports whether the request must go as a copy: it goes as it is
// otherwise.
func (p prep) copies() bool { return p.move || p.add || p.strip || p.extra > 0 }

// plan says what the request to send for r, the caller's, must be: r
// itself, or a copy moved to the API root, with the key and headers it
// must carry.
func (t *Transport) plan(r *http.Request) prep {
	if r.URL == nil {
		return prep{}
	}
	var p prep
	p.move = t.moved && sameOrigin(r.URL, t.defaultAPI) && hasPathPrefix(r.URL.Path, t.defaultAPI.Path)
	p.own = p.move || (t.api != nil && sameOrigin(r.URL, t.api))
	var have string
	if v := r.Header[t.auth.Header]; len(v) > 0 {
		have = v[0]
	} else if v := headerFold(r.Header, t.auth.Header); len(v) > 0 {
		have = v[0] // the caller's, as spelt ("api-key"): net/http sends it so
	}
	// The key is added for the API's origin, and taken off a request for
	// any other: net/http keeps it on a redirect to another port of the
	// same host name. A redirect from the API loses the key's header
	// whoever set it (an SDK, with a key of its own): net/http carries
	// every header but Authorization and cookies to any host.
	p.add = t.authValue != nil && have == "" && p.own
	p.strip = !p.own && have != "" && (t.authValue != nil && have == t.authValue[0] || t.redirectedFromAPI(r))
	if p.own {
		for _, kv := range t.headers {
			if !hasHeader(r.Header, kv.key) {
				p.extra++
			}
		}
	}
	return p
}

// apply makes r, a shallow copy of the caller's request, what plan said it
// must be: it replaces r's URL and Header, never what they point to.
func (t *Transport) apply(r *http.Request, p prep) {
	if p.move {
		u := *r.URL
		u.Scheme, u.Host, u.User = t.api.Scheme, t.api.Host, nil
		u.Path = t.api.Path + strings.TrimPrefix(r.URL.Path, t.defaultAPI.Path)
		u.RawPath = ""
		if r.URL.RawPath != "" || t.api.RawPath != "" {
			// An escaped path (a %2F in an ID, or in the root given)
			// keeps its escapes: the server would read another path
			// without them. URL checks that RawPath encodes Path before
			// it uses it.
			u.RawPath = t.api.EscapedPath() + strings.TrimPrefix(r.URL.EscapedPath(), t.defaultAPI.EscapedPath())
		}
		switch {
		case t.api.RawQuery == "":
		case u.RawQuery == "":
			u.RawQuery = t.api.RawQuery
		default:
			// The root's parameters (a gateway's tenant) first.
			u.RawQuery = t.api.RawQuery + "&" + u.RawQuery
		}
		r.URL, r.Host = &u, ""
	}
	if !p.add && !p.strip && p.extra == 0 {
		return
	}
	if len(r.Header) == 0 && p.add {
		r.Header = maps.Clone(t.keyed) // the key and every Spec header: none is the caller's
		return
	}
	// A copy of the map whose values are the caller's, clipped so that
	// nothing appended below reaches the caller's arrays.
	h := make(http.Header, len(r.Header)+1+p.extra)
	if len(r.Header) > 0 { // ranging over even an empty map costs a random start
		for k, v := range r.Header {
			if p.strip && foldEqual(k, t.auth.Header) {
				continue // the key's header, however the caller spelt it
			}
			h[k] = v[:len(v):len(v)]
		}
	}
	if p.add {
		h[t.auth.Header] = t.authValue[:1:1]
	}
	if p.own {
		for _, kv := range t.headers {
			if !hasHeader(r.Header, kv.key) {
				h[kv.key] = kv.values[:len(kv.values):len(kv.values)]
			}
		}
	}
	r.Header = h
}

// redirectedFromAPI reports whether r is a redirect of a chain that
// passed through the API's origin, at any hop: net/http gives every hop
// the first request's headers, not only the one after the API. The chain
// is followed at most maxRedirectHops back.
func (t *Transport) redirectedFromAPI(r *http.Request) bool {
	resp := r.Response
	for range maxRedirectHops {
		if resp == nil || resp.Request == nil {
			return false
		}
		if t.apiOrigin(resp.Request.URL) {
			return true
		}
		resp = resp.Request.Response
	}
	return true // a chain that long is taken for one from the API
}

// maxRedirectHops bounds the redirect chain redirectedFromAPI follows:
// net/http's Client stops after ten.
const maxRedirectHops = 64

// apiOrigin reports whether u is of the API's origin, the root given or
// the provider's own.
func (t *Transport) apiOrigin(u *url.URL) bool {
	return sameOrigin(u, t.api) || sameOrigin(u, t.defaultAPI)
}

// forward sends req through the stack with info, as transport.Forward
// does.
func (t *Transport) forward(req *http.Request, info *transport.Info) (*http.Response, error) {
	if t.stackInfo != nil {
		return t.stackInfo.RoundTripInfo(req, info)
	}
	return transport.Forward(t.stack, req, info)
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *Transport) CloseIdleConnections() { transport.CloseIdleConnections(t.stack) }

// observed sends req and reports what the stack's decorators cannot: a
// fetch of the model catalog, and a request of a batch helper, with how
// long they took.
func (t *Transport) observed(req *http.Request, info *transport.Info) (*http.Response, error) {
	batch, _ := req.Context().Value(batchKey{}).(*batchInfo)
	catalog := req.Method == http.MethodGet && info.Endpoint == transport.EndpointModels
	if batch == nil && !catalog {
		return t.forward(req, info)
	}
	start := time.Now()
	resp, err := t.forward(req, info)
	e := transport.Event{Kind: transport.EventCatalog, Endpoint: info.Endpoint, Wait: time.Since(start), Err: err}
	if resp != nil {
		e.Status = resp.StatusCode
	}
	if batch != nil {
		e.Kind, e.Model, e.Count = transport.EventBatch, batch.model, batch.items
	}
	t.events.Emit(e)
	return resp, err
}

// parseRoot parses an API root: an absolute URL with a host, its path
// without the slashes that end it ("/v1//" is "/v1").
func parseRoot(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return nil, false
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	return u, true
}

// providerName is the name of the provider that errors start with.
// checkRates returns the error of a WithRate for a route spec does not
// limit: a name mistyped, or a route without a limiter, whose rate would
// otherwise be ignored without a word.
func checkRates(spec Spec, rates map[string]float64) error {
	var bad []string
	for name := range rates {
		if r, ok := spec.Routes[name]; !ok || !r.Limit {
			bad = append(bad, strconv.Quote(name))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var limited []string
	for name, r := range spec.Routes {
		if r.Limit {
			limited = append(limited, strconv.Quote(name))
		}
	}
	slices.Sort(bad)
	slices.Sort(limited)
	return fmt.Errorf("%s: WithRate: no rate-limited route named %s (the routes with a rate: %s)",
		providerName(spec), strings.Join(bad, ", "), strings.Join(limited, ", "))
}

// checkFallback reports a fallback asked of a Spec none of whose routes
// falls back (Azure's, where a deployment is its model): ignored, it would
// leave the caller believing a model that fails is served by another.
func checkFallback(spec Spec, chains map[string][]string) error {
	if len(chains) == 0 {
		return nil
	}
	for _, r := range spec.Routes {
		if r.Fallback {
			return nil
		}
	}
	return fmt.Errorf("%s: WithFallback: no route of this provider falls back to another model", providerName(spec))
}

func providerName(spec Spec) string {
	if spec.Name == "" {
		return "steady"
	}
	return spec.Name
}

// header is one of the Spec's headers.
type header struct {
	key    string
	values []string
}

// batchKey is the context key of a request of a batch helper.
type batchKey struct{}

type batchInfo struct {
	model string
	items int
}

// WithBatch returns a context that marks the requests made with it as one
// batch of items for model, of a batch helper (such as together.EmbedAll):
// a [Transport] with a hook ([WithEvents]) reports each of them as a
// [transport.EventBatch].
func WithBatch(ctx context.Context, model string, items int) context.Context {
	return context.WithValue(ctx, batchKey{}, &batchInfo{model: model, items: items})
}

// hasHeader reports whether h holds the header key (in canonical form),
// however it is spelt.
func hasHeader(h http.Header, key string) bool {
	if _, ok := h[key]; ok {
		return true
	}
	return headerFold(h, key) != nil
}

// headerFold is the values of the header key (in canonical form) that h
// holds under another spelling ("api-key", "API-KEY": a map literal, or a
// header set by index, keeps the caller's), or nil. net/http sends such a
// header as it is spelt, and the server reads it as the same header.
func headerFold(h http.Header, key string) []string {
	if len(h) == 0 { // ranging over even an empty map costs a random start
		return nil
	}
	for k, v := range h {
		if k != key && foldEqual(k, key) {
			return v
		}
	}
	return nil
}

// foldEqual reports whether the header names a and b are the same, ASCII
// letters of either case alike.
func foldEqual(a, b string) bool {
	return len(a) == len(b) && strings.EqualFold(a, b)
}

// sameOrigin reports whether a and b have the same scheme, host and port,
// the port made explicit: what the API key is bound to. It compares in
// place, with no allocation.
func sameOrigin(a, b *url.URL) bool {
	if a == nil || b == nil {
		return false
	}
	if a.Host == b.Host && a.Scheme == b.Scheme {
		return true // as nearly every request is: the same bytes are the same origin
	}
	return strings.EqualFold(a.Scheme, b.Scheme) &&
		strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return "443"
	case "http":
		return "80"
	}
	return ""
}

// hasPathPrefix reports whether path is prefix or a path below it.
func hasPathPrefix(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}
