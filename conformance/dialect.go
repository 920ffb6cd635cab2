package conformance

import (
	"net/http"
	"strings"
	"time"
)

// Messages is the endpoint name of Anthropic's Messages API (POST
// /v1/messages), a key of [Config.Limits].
const Messages = "messages"

// Dialect is the provider a [Server] speaks as: the shape of its error
// answers, how its token limits count a request, and whether it limits
// each model apart. Every server answers every endpoint it knows in that
// endpoint's own shape (OpenAI's for /v1/chat/completions, Anthropic's for
// /v1/messages, with its server-sent events), takes the key as
// "Authorization: Bearer" or "x-api-key", and reports usage in every
// answer and in the last events of a stream.
type Dialect uint8

const (
	// DialectTogether is Together's, the default: errors
	// {"error": {"message", "type", "param", "code"}} with 429s of type
	// dynamic_request_limited or dynamic_token_limited; a token limit
	// counts a request's text and its max_tokens when it arrives; limits
	// per key and endpoint.
	DialectTogether Dialect = iota
	// DialectOpenAI is OpenAI's: the same error shape, 429s of type
	// "requests" or "tokens" with code rate_limit_exceeded, and
	// insufficient_quota ([FaultQuota]); a token limit counts what the
	// request uses, its prompt and the tokens generated, not its
	// max_tokens; limits per key, endpoint and model.
	DialectOpenAI
	// DialectAnthropic is Anthropic's: errors {"type": "error", "error":
	// {"type", "message"}} (rate_limit_error, overloaded_error on 529,
	// billing_error on 402, timeout_error on 504, not_found_error, ...); input and output tokens limited apart when
	// [Limit.OutputTPM] is set, each counting what is used; limits per
	// key, endpoint and model; with [HeaderAnthropic],
	// anthropic-ratelimit-input-tokens-* and -output-tokens-* beside the
	// tightest of them.
	DialectAnthropic
)

// String names d: "together", "openai", "anthropic".
func (d Dialect) String() string {
	switch d {
	case DialectOpenAI:
		return "openai"
	case DialectAnthropic:
		return "anthropic"
	}
	return "together"
}

// replyTokens is the tokens of every generated answer: one a word.
var replyTokens = strings.Count(replyText, " ") + 1

// requestKey is the API key of a request: "Authorization: Bearer <key>",
// or Anthropic's "x-api-key: <key>".
func requestKey(h http.Header) string {
	if k := bearerKey(h.Get("Authorization")); k != "" {
		return k
	}
	return strings.TrimSpace(h.Get("X-Api-Key"))
}

// generated is the tokens an answer of endpoint generates.
func generated(endpoint string) int {
	switch endpoint {
	case Chat, Completions, Messages:
		return replyTokens
	}
	return 0
}

// tokensOf is a request's size against the token limits: what Together
// counts (its text and max_tokens) or, for OpenAI and Anthropic, what it
// uses; the output apart for an output limit.
func (s *Server) tokensOf(endpoint string, p *parsedBody) (in, out float64) {
	if s.cfg.Dialect == DialectTogether {
		return float64(p.tokens), 0
	}
	return float64(p.text), float64(generated(endpoint))
}

// errorBody is an error answer in the server's dialect.
func (s *Server) errorBody(status int, typ, code, msg string) []byte {
	if s.cfg.Dialect != DialectAnthropic {
		return togetherError(typ, code, msg)
	}
	return anthropicError(anthropicErrorType(status), msg)
}

// anthropicErrorType is Anthropic's error type for a status.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusMethodNotAllowed:
		return "invalid_request_error"
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

// anthropicError is Anthropic's error form.
func anthropicError(typ, msg string) []byte {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	return append(b, "}}"...)
}

// limitedBody is the body of a 429 of the request or token limit.
func (s *Server) limitedBody(refusal, model string) []byte {
	tokens := refusal == ErrorTokenLimited
	switch s.cfg.Dialect {
	case DialectOpenAI:
		typ, what := "requests", "requests per min (RPM)"
		if tokens {
			typ, what = "tokens", "tokens per min (TPM)"
		}
		return togetherError(typ, "rate_limit_exceeded", "Rate limit reached for "+model+
			" in organization org-simulated on "+what+". Please try again later.")
	case DialectAnthropic:
		what := "requests"
		if tokens {
			what = "tokens"
		}
		return anthropicError("rate_limit_error", "This request would exceed your organization's rate limit of "+
			what+" per minute for "+model+". Please try again later.")
	}
	if tokens {
		return s.tokenLimited
	}
	return s.requestLimited
}

// modelNotFound is the 404 of an unknown model.
func (s *Server) modelNotFound(model string) []byte {
	switch s.cfg.Dialect {
	case DialectOpenAI:
		return togetherError("invalid_request_error", "model_not_found",
			"The model `"+model+"` does not exist or you do not have access to it.")
	case DialectAnthropic:
		return anthropicError("not_found_error", "model: "+model)
	}
	return togetherError("invalid_request_error", "model_not_found", "Unable to access model "+model+
		". Please visit https://api.together.ai/models to view the list of supported models.")
}

// quotaAnswer is the answer of an account out of credit.
func (s *Server) quotaAnswer() (int, []byte) {
	switch s.cfg.Dialect {
	case DialectOpenAI:
		return http.StatusTooManyRequests, togetherError("insufficient_quota", "insufficient_quota",
			"You exceeded your current quota, please check your plan and billing details.")
	case DialectAnthropic:
		return http.StatusBadRequest, anthropicError("invalid_request_error",
			"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.")
	}
	typ, code, msg := faultError(http.StatusPaymentRequired)
	return http.StatusPaymentRequired, togetherError(typ, code, msg)
}

// rateHeaders writes the rate headers of an answer: those of the
// configured [Headers], with Anthropic's input and output token limits
// apart. The values are the enforcing algorithm's (see [Headers]): a
// bucket that holds a minute of its rate, as OpenAI and Anthropic
// describe theirs, states its per-minute limit.
func (s *Server) rateHeaders(h http.Header, status int, wait time.Duration, req, tok, out rateWindow, now time.Time, key string) {
	tight := tok
	if out.set && (!tok.set || out.remaining*max(tok.limit, 1) < tok.remaining*max(out.limit, 1)) {
		tight = out
	}
	rateHeaders(h, s.cfg.Headers, status, wait, req, tight, now, key)
	if s.cfg.Headers&HeaderAnthropic == 0 || s.cfg.Dialect != DialectAnthropic {
		return
	}
	const rfc3339Milli = "2006-01-02T15:04:05.000Z07:00"
	for _, w := range [...]struct {
		name string
		rw   rateWindow
	}{{"Input-Tokens", tok}, {"Output-Tokens", out}} {
		if !w.rw.set {
			continue
		}
		h["Anthropic-Ratelimit-"+w.name+"-Limit"] = []string{formatNumber(w.rw.limit)}
		h["Anthropic-Ratelimit-"+w.name+"-Remaining"] = []string{formatNumber(w.rw.remaining)}
		h["Anthropic-Ratelimit-"+w.name+"-Reset"] = []string{now.Add(ceilTo(w.rw.reset, time.Millisecond)).UTC().Format(rfc3339Milli)}
	}
}
