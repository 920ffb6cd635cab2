package conformance

import (
	"bytes"
	"io"
	"net/http"

	"github.com/steadyapi/steady/transport"
)

// HideUsage wraps next so that no answer reports the tokens it used: every
// "usage" in an answer's body is renamed "hidden". A stack wrapped around
// it learns nothing from usage, which is how a test measures what usage
// teaches a limiter (charging max_tokens alone, for example). The body is
// read whole, so streamed answers arrive at once.
func HideUsage(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			return nil, err
		}
		b = bytes.ReplaceAll(b, []byte(`"usage"`), []byte(`"hidden"`))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		resp.ContentLength = int64(len(b))
		return resp, nil
	})
}
