package together_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/steadyapi/steady/together"
)

// FuzzCheckResponse feeds CheckResponse any status, one header and any
// body from a server that may echo the caller's key anywhere. It must not
// panic, must tell 2xx from the rest, must keep the message bounded, must
// give the whole body back to the caller, and must never return the key.
func FuzzCheckResponse(f *testing.F) {
	const key = "tgp_v1_FUZZkey0123456789abcdefghijklmnop"
	for _, seed := range []struct {
		status     int
		hkey, hval string
		body       string
		echoAt     int
		echoPrefix uint8
	}{
		{429, "X-Request-Id", "req-1", `{"error":{"message":"slow down","type":"dynamic_request_limited"}}`, -1, 0},
		{401, "X-Request-Id", "req-", `{"error":{"message":"bad key ","type":"invalid_api_key","code":401}}`, 31, 40},
		{404, "", "", `{"error":{"message":"model x not found","code":"model_not_found","param":"model"}}`, -1, 0},
		{503, "", "", `{"message":"","type":"","code":null,"param":"model"}`, 12, 12},
		{400, "", "", `{"error":"plain text error"}`, 10, 20},
		{500, "Request-Id", "abc", `<html>Internal Server Error</html>`, 6, 255},
		{200, "", "", `{"ok":true}`, -1, 0},
		{302, "", "", ``, -1, 0},
		{999, "", "", `{"error":{"message":"\u0074gp_v1_FUZZkey0123456789abcdefghijklmnop"}}`, -1, 0},
		{503, "", "", `{"detail":"\u0074gp_v1_FUZZkey0123456789abcdefghijklmnop overloaded"}`, -1, 0},
		{422, "", "", `{"detail":[{"loc":["body","model"],"msg":"` + strings.Repeat("x", 500) + `"}]}`, 505, 255},
	} {
		f.Add(seed.status, seed.hkey, seed.hval, []byte(seed.body), seed.echoAt, seed.echoPrefix)
	}
	f.Fuzz(func(t *testing.T, status int, hkey, hval string, body []byte, echoAt int, echoPrefix uint8) {
		if status < 100 || status > 999 {
			return // net/http never makes such a response
		}
		// Echo the key, or a prefix of it of at least 8 bytes, into the
		// body at echoAt, as a server may; hval may hold it too.
		if echoAt >= 0 && echoAt <= len(body) {
			n := min(len(key), 8+int(echoPrefix)%(len(key)-7))
			body = append(body[:echoAt:echoAt], append([]byte(key[:n]), body[echoAt:]...)...)
		}
		req, err := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		h := http.Header{}
		if hkey != "" {
			h[http.CanonicalHeaderKey(hkey)] = []string{hval}
		}
		resp := &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: req}

		err = together.CheckResponse(resp)
		if (status >= 200 && status < 300) != (err == nil) {
			t.Fatalf("status %d: error %v", status, err)
		}
		rest, rerr := io.ReadAll(resp.Body)
		if rerr != nil || !bytes.Equal(rest, body) {
			t.Fatalf("the body is not given back whole: %v, %d of %d bytes", rerr, len(rest), len(body))
		}
		if err == nil {
			return
		}
		api, ok := err.(*together.APIError)
		if !ok {
			t.Fatalf("%T is not an *APIError", err)
		}
		if api.StatusCode != status {
			t.Fatalf("status %d reported as %d", status, api.StatusCode)
		}
		// The message is at most the 64 KiB read; Type, Code and Param
		// come out of the same bytes.
		const bound = 64 << 10
		for _, s := range []string{api.Message, api.Type, api.Code, api.Param} {
			if len(s) > bound {
				t.Fatalf("a field of %d bytes", len(s))
			}
		}
		if len(api.Error()) > 4*bound+len(hval)+64 {
			t.Fatalf("an error of %d bytes", len(api.Error()))
		}
		for _, s := range []string{api.Error(), api.Message, api.Type, api.Code, api.Param, api.RequestID} {
			// Any run that starts with the key's first 8 bytes is removed
			// whole, so not even that prefix is left.
			if strings.Contains(s, key[:8]) {
				t.Fatalf("the key leaked: %q", s)
			}
		}
	})
}
