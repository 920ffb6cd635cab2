package preset

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kinds of failure an [*APIError] matches with [errors.Is], so callers can
// branch without reading status codes. Each preset's own names for them
// (together.ErrRateLimited, openai.ErrQuotaExceeded, ...) are these.
var (
	ErrRateLimited   = errors.New("steady: rate limited")     // 429, but for quota
	ErrQuotaExceeded = errors.New("steady: quota exceeded")   // 429 insufficient_quota; Anthropic's 400 on credit
	ErrOverloaded    = errors.New("steady: model overloaded") // 503, 529
	ErrModelNotFound = errors.New("steady: model not found")  // 404 about a model, or an Azure deployment
	ErrSpendingLimit = errors.New("steady: spending limit")   // 402
	ErrUnauthorized  = errors.New("steady: unauthorized")     // 401, 403
)

// maxErrorBody is the most of an error body CheckResponse reads: enough for
// any real error message, bounded against a hostile 50 MB answer.
const maxErrorBody = 64 << 10

// APIError is an error answer of a provider's API, parsed from its error
// body: {"error": {"message", "type", "param", "code"}} (OpenAI, Together
// and every OpenAI-compatible API), {"type": "error", "error": {"type",
// "message"}} (Anthropic), {"error": "text"}, or a flat {"message",
// "type"}. A body of another shape (FastAPI's and vLLM's {"detail": ...})
// is the message, as text.
type APIError struct {
	Provider   string // the preset's name, which the message starts with
	StatusCode int    // the HTTP status
	Type       string // e.g. "dynamic_request_limited", "invalid_request_error", "overloaded_error"
	Code       string // e.g. "model_not_found", "insufficient_quota"; numbers are given as text
	Message    string // the server's message, with the API key removed
	Param      string // the request parameter at fault, when the server names one
	RequestID  string // the request id header, for the provider's support
}

// Error reads "<provider>: <status> <text> (<type>): <message> [request
// <id>]", leaving out what the server did not send.
func (e *APIError) Error() string {
	var b strings.Builder
	p := e.Provider
	if p == "" {
		p = "steady"
	}
	fmt.Fprintf(&b, "%s: %d", p, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" { // none for 529, Anthropic's overloaded
		b.WriteString(" " + t)
	}
	if e.Type != "" {
		b.WriteString(" (" + e.Type + ")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

// Is matches the kind of failure: [ErrRateLimited], [ErrQuotaExceeded],
// [ErrOverloaded], [ErrModelNotFound], [ErrSpendingLimit] or
// [ErrUnauthorized].
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests && !e.quota()
	case ErrQuotaExceeded:
		return e.quota()
	case ErrOverloaded:
		return e.StatusCode == http.StatusServiceUnavailable || e.StatusCode == 529
	case ErrModelNotFound:
		return e.StatusCode == http.StatusNotFound && e.aboutModel()
	case ErrSpendingLimit:
		return e.StatusCode == http.StatusPaymentRequired
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// quota reports an account out of credit: OpenAI's insufficient_quota,
// Anthropic's 400 saying the credit balance is too low.
func (e *APIError) quota() bool {
	return e.Code == "insufficient_quota" || e.Type == "insufficient_quota" ||
		e.StatusCode == http.StatusBadRequest && strings.Contains(strings.ToLower(e.Message), "credit balance")
}

// aboutModel reports an error about the model asked for: Azure OpenAI's
// DeploymentNotFound among them, a deployment being the model it serves.
func (e *APIError) aboutModel() bool {
	return e.Code == "model_not_found" || e.Param == "model" || strings.EqualFold(e.Code, "DeploymentNotFound") ||
		strings.Contains(strings.ToLower(e.Message), "model")
}

// CheckResponse returns nil for a 2xx response and an [*APIError] naming
// provider for any other. It reads at most 64 KiB of the body to parse the
// error and then puts what it read back in front of the rest, so the
// caller can still read the whole body; the caller still closes it. A body
// still gzip-compressed (Content-Encoding: gzip, as net/http leaves it when
// the request asked for gzip itself) is parsed uncompressed, and given to
// the caller as it came. A body that is not JSON gives its first 512 bytes
// as the message, or its title if it is an HTML page (a CDN's error page);
// a JSON body of none of the shapes [APIError] reads (FastAPI's and vLLM's
// {"detail": ...}, a list of "errors") gives its first 512 bytes written
// compact, its strings' escapes decoded. The credentials of resp.Request,
// if the server echoed them, are removed from every field, before such a
// message is cut: the value of every header that may carry one
// (Authorization, Proxy-Authorization, and any whose name has Key, Token,
// Secret or Auth in it, as X-Api-Key, Api-Key and a provider's own key
// header do).
func CheckResponse(resp *http.Response, provider string) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &APIError{Provider: provider, StatusCode: resp.StatusCode, RequestID: requestID(resp.Header)}
	bodyText := false
	if resp.Body != nil && resp.Body != http.NoBody {
		buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body = &peekedBody{Reader: io.MultiReader(bytes.NewReader(buf), resp.Body), c: resp.Body}
		bodyText = parseErrorBody(e, decoded(resp.Header, buf, maxErrorBody))
	}
	if resp.Request != nil {
		for h, vs := range resp.Request.Header {
			if !credentialHeader(h) {
				continue
			}
			for _, key := range vs {
				// A server may echo the key in any field, not only the message.
				for _, f := range []*string{&e.Message, &e.Type, &e.Code, &e.Param, &e.RequestID} {
					*f = redact(*f, key)
				}
			}
		}
	}
	if bodyText {
		// Cut once the key is out: a key the cut fell in is gone whole,
		// not left as the few characters before the cut.
		e.Message = cutText(e.Message, maxTextMessage)
	}
	return e
}

// decoded is buf, the first bytes of a body, as the server wrote it: a
// body still gzip-compressed is uncompressed, as far as buf goes, to at
// most limit bytes (a small body may uncompress to gigabytes).
func decoded(h http.Header, buf []byte, limit int64) []byte {
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Encoding"))) {
	case "gzip", "x-gzip":
	default:
		return buf
	}
	zr, err := gzip.NewReader(bytes.NewReader(buf))
	if err != nil {
		return buf
	}
	out, _ := io.ReadAll(io.LimitReader(zr, limit)) // what a cut body gives
	return out
}

// credentialHeader reports whether a request header of the name h may
// carry a credential: an API key in a header of a provider's own naming
// is as secret as one in Authorization.
func credentialHeader(h string) bool {
	h = strings.ToLower(h)
	for _, w := range [...]string{"auth", "key", "token", "secret"} {
		if strings.Contains(h, w) {
			return true
		}
	}
	return false
}

func requestID(h http.Header) string {
	for _, k := range [...]string{"X-Request-Id", "Request-Id", "X-Together-Request-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// errorBody covers {"error": {...}}, {"error": "text"} and a flat
// {"message", "type", ...}; Anthropic's {"type": "error", "error": {...}}
// is the first.
type errorBody struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
}

// parseErrorBody fills e from buf, an error body. It reports whether the
// message is the body's text, which the caller cuts to maxTextMessage.
func parseErrorBody(e *APIError, buf []byte) (bodyText bool) {
	var b errorBody
	if json.Unmarshal(buf, &b) != nil {
		e.Message = textMessage(buf)
		if bytes.Contains(buf, []byte("insufficient_quota")) {
			// A body cut short still names the quota, as the retry rule
			// that returned it at once read it (see quotaRule).
			e.Code = "insufficient_quota"
		}
		return true
	}
	var inner errorBody
	switch {
	case len(b.Error) > 0 && b.Error[0] == '{':
		_ = json.Unmarshal(b.Error, &inner)
	case len(b.Error) > 0 && b.Error[0] == '"':
		_ = json.Unmarshal(b.Error, &inner.Message)
		inner.Type, inner.Code, inner.Param = b.Type, b.Code, b.Param
	default:
		inner = b
	}
	e.Message, e.Type = inner.Message, inner.Type
	e.Code, e.Param = rawText(inner.Code), rawText(inner.Param)
	if e.Message == "" && e.Type == "" && e.Code == "" && e.Param == "" {
		// A shape of none of these fields ({"detail": ...} of FastAPI
		// and vLLM, {"errors": [...]}): the server's words are in the
		// body, which is the message.
		e.Message = jsonText(buf)
		return true
	}
	return false
}

// jsonText is buf, a JSON value, written compact in the order it came,
// the escapes of its strings decoded where JSON allows (an echoed key
// written \u0073k-... reads sk-..., which redact finds). It stops past
// maxErrorBody bytes.
func jsonText(buf []byte) string {
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.UseNumber()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	type open struct {
		object bool
		items  int // keys and values written
	}
	var stack []open
	for b.Len() <= maxErrorBody {
		t, err := dec.Token()
		if err != nil {
			break // the value's end
		}
		d, isDelim := t.(json.Delim)
		if n := len(stack); n > 0 && (!isDelim || d == '{' || d == '[') {
			o := &stack[n-1]
			switch {
			case o.items == 0:
			case o.object && o.items%2 == 1:
				b.WriteByte(':')
			default:
				b.WriteByte(',')
			}
			o.items++
		}
		switch v := t.(type) {
		case json.Delim:
			b.WriteByte(byte(v))
			if v == '{' || v == '[' {
				stack = append(stack, open{object: v == '{'})
			} else if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case string:
			_ = enc.Encode(v)       // a string always encodes
			b.Truncate(b.Len() - 1) // Encode's newline
		case json.Number:
			b.WriteString(string(v))
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case nil:
			b.WriteString("null")
		}
	}
	return b.String()
}

// maxTextMessage is the most of a body that is not JSON given as the
// message.
const maxTextMessage = 512

// textMessage is the message of a body that is not JSON: the title of an
// HTML page (the error page of a CDN or a proxy in front of the API, whose
// markup says nothing), else the body. Bytes that are not UTF-8 are
// replaced; the caller cuts it (cutText) once the key is out of it.
func textMessage(buf []byte) string {
	if t := htmlTitle(buf); t != "" {
		buf = []byte(t)
	}
	return strings.ToValidUTF8(strings.TrimSpace(string(buf)), "\uFFFD")
}

// cutText is s cut to at most n bytes, on a character, never inside one.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}

// htmlTitle is the text of the title of buf, if it is an HTML page with
// one, its spaces and line ends collapsed; "" if not.
func htmlTitle(buf []byte) string {
	s := bytes.TrimSpace(buf)
	if len(s) == 0 || s[0] != '<' {
		return ""
	}
	i := indexFold(s, "<title")
	if i < 0 {
		return ""
	}
	j := bytes.IndexByte(s[i:], '>')
	if j < 0 {
		return ""
	}
	s = s[i+j+1:]
	k := indexFold(s, "</title")
	if k < 0 {
		return ""
	}
	return strings.Join(strings.Fields(html.UnescapeString(string(s[:k]))), " ")
}

// indexFold is the index of the first sub in s, ASCII letters of either
// case alike, or -1.
func indexFold(s []byte, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if asciiEqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func asciiEqualFold(a []byte, b string) bool {
	for i := range len(b) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// rawText gives a JSON string's text, a number's digits, "" for null.
func rawText(r json.RawMessage) string {
	if len(r) == 0 || string(r) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(r)
}

// redact removes the key of an auth header's value from s, and any
// key-like run that starts with the key's first 8 characters (servers
// often echo a prefix, or a longer string that begins with the key).
func redact(s, value string) string {
	tok := strings.TrimSpace(value)
	if len(tok) > 7 && strings.EqualFold(tok[:7], "bearer ") {
		tok = strings.TrimSpace(tok[7:])
	}
	if len(tok) < 8 || s == "" {
		return s
	}
	s = strings.ReplaceAll(s, tok, "[redacted]")
	prefix := tok[:8]
	if !strings.Contains(s, prefix) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, prefix)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := i + len(prefix)
		for j < len(s) && keyByte(s[j]) {
			j++
		}
		b.WriteString(s[:i])
		b.WriteString("[redacted]")
		s = s[j:]
	}
}

// keyByte reports whether c may be part of an API key.
func keyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

// peekedBody is a body whose first bytes were read and put back.
type peekedBody struct {
	io.Reader
	c io.Closer
}

func (b *peekedBody) Close() error { return b.c.Close() }
