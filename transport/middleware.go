package transport

import "net/http"

// Middleware decorates an [http.RoundTripper]: it returns a RoundTripper that
// does something before or after calling next.
type Middleware func(next http.RoundTripper) http.RoundTripper

// Chain wraps base in the middleware mw, the first one outermost: the
// request passes through mw[0], then mw[1], and so on down to base. A nil
// base means [http.DefaultTransport]; nil middleware are skipped.
func Chain(base http.RoundTripper, mw ...Middleware) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	rt := base
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] != nil {
			rt = mw[i](rt)
		}
	}
	return rt
}

// Func is an ordinary function used as an [http.RoundTripper], as
// [http.HandlerFunc] is for handlers.
type Func func(*http.Request) (*http.Response, error)

// RoundTrip calls f(req).
func (f Func) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// CloseIdleConnections closes the idle connections of rt when it has a
// CloseIdleConnections method, as [http.Client.CloseIdleConnections] does
// for its own transport. Every steady decorator forwards its own
// CloseIdleConnections to the RoundTripper it wraps with it, so the call
// reaches the base transport through a whole stack.
func CloseIdleConnections(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
