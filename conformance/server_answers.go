package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// parsedBody is what the server needs of a request body: decoded once, into as
// little as will do.
type parsedBody struct {
	model  string
	stream bool
	tokens int      // the request's size against a token limit
	inputs []string // embeddings: one vector each
	count  int      // batches: the requests in the batch
	text   int      // the tokens of the request's text alone
}

// parse decodes body, a POST to endpoint.
func (p *parsedBody) parse(endpoint string, body []byte) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty body")
	}
	var r struct {
		Model     string `json:"model"`
		Stream    bool   `json:"stream"`
		MaxTokens int    `json:"max_tokens"`
		Messages  []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
		Prompt   json.RawMessage   `json:"prompt"`
		Input    json.RawMessage   `json:"input"`
		System   json.RawMessage   `json:"system"`
		Requests []json.RawMessage `json:"requests"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return err
	}
	p.model, p.stream = r.Model, r.Stream
	chars := 0
	count := func(raw json.RawMessage, ids bool) ([]string, error) {
		ts, n, err := bodyTexts(raw, ids)
		chars += n
		return ts, err
	}
	switch endpoint {
	case Chat, Messages:
		for _, m := range r.Messages {
			if _, err := count(m.Content, false); err != nil {
				return err
			}
		}
		if endpoint == Messages {
			if _, err := count(r.System, false); err != nil {
				return err
			}
			if r.MaxTokens <= 0 {
				return errors.New("max_tokens: field required")
			}
		}
	case Completions, Images:
		if _, err := count(r.Prompt, endpoint == Completions); err != nil {
			return err
		}
	case Embeddings:
		ts, err := count(r.Input, true)
		if err != nil {
			return err
		}
		if len(ts) == 0 {
			return errors.New("input is required")
		}
		p.inputs = ts
	case Batches:
		p.count = len(r.Requests)
		if len(r.Requests) == 0 {
			ts, _, err := bodyTexts(r.Input, false)
			if err != nil {
				return err
			}
			for _, t := range ts { // a JSONL text of one request per line, or an array of them
				for line := range strings.Lines(t) {
					if strings.TrimSpace(line) != "" {
						p.count++
					}
				}
			}
		}
	}
	p.text = (chars + 3) / 4
	p.tokens = p.text + max(r.MaxTokens, 0)
	return nil
}

// bodyTexts reads a field that holds text in any of the forms the API takes:
// a string, an array of strings, an array of content parts with "text", or
// token ids where ids is set (OpenAI's embeddings and completions): an
// array of integers, or an array of such arrays. chars is the size of the texts in characters,
// four a token id as the server counts four characters a token; a token
// array's text is its JSON, so that the same ids get the same vector.
func bodyTexts(raw json.RawMessage, ids bool) (texts []string, chars int, err error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, 0, nil
	}
	switch raw[0] {
	case '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return []string{s}, utf8.RuneCountInString(s), err
	case '[':
		var ss []string
		if json.Unmarshal(raw, &ss) == nil {
			for _, s := range ss {
				chars += utf8.RuneCountInString(s)
			}
			return ss, chars, nil
		}
		var tokens []int64
		if ids && json.Unmarshal(raw, &tokens) == nil {
			return []string{string(raw)}, 4 * len(tokens), nil
		}
		var lists []json.RawMessage
		if ids && json.Unmarshal(raw, &lists) == nil && len(lists) > 0 {
			ss = make([]string, 0, len(lists))
			for _, l := range lists {
				l = bytes.TrimSpace(l)
				if len(l) == 0 || l[0] != '[' || json.Unmarshal(l, &tokens) != nil {
					ss = nil
					break
				}
				ss = append(ss, string(l))
				chars += 4 * len(tokens)
			}
			if ss != nil {
				return ss, chars, nil
			}
			chars = 0
		}
		var parts []struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(raw, &parts); err != nil {
			return nil, 0, errors.New("expected a string, an array of strings, an array of content parts or token ids")
		}
		ss = make([]string, len(parts))
		for i, p := range parts {
			ss[i] = p.Text
			chars += utf8.RuneCountInString(p.Text)
		}
		return ss, chars, nil
	}
	return nil, 0, errors.New("expected a string or an array")
}

// replyText is the text of every generated answer; streamed, one event per
// word.
const replyText = "This is a simulated answer from the provider."

// generate makes the answer of a model endpoint: a body, or the events of
// a stream. s.mu is held (for the id sequence).
func (s *Server) generate(endpoint string, p *parsedBody, now time.Time) (body []byte, chunks [][]byte) {
	s.seq++
	created := now.Unix()
	completion := strings.Count(replyText, " ") + 1
	usage := func(b []byte, completion int) []byte {
		b = append(b, `"usage":{"prompt_tokens":`...)
		b = strconv.AppendInt(b, int64(p.text), 10)
		b = append(b, `,"completion_tokens":`...)
		b = strconv.AppendInt(b, int64(completion), 10)
		b = append(b, `,"total_tokens":`...)
		b = strconv.AppendInt(b, int64(p.text+completion), 10)
		return append(b, '}')
	}
	head := func(b []byte, prefix, object string) []byte {
		b = append(b, `{"id":"`...)
		b = append(b, prefix...)
		b = strconv.AppendUint(b, s.seq, 10)
		b = append(b, `","object":"`...)
		b = append(b, object...)
		b = append(b, `","created":`...)
		b = strconv.AppendInt(b, created, 10)
		b = append(b, `,"model":`...)
		return appendJSONString(b, p.model)
	}
	switch endpoint {
	case Messages:
		return s.message(p)
	case Chat, Completions:
		prefix, object, chunkObject := "chatcmpl-", "chat.completion", "chat.completion.chunk"
		if endpoint == Completions {
			prefix, object, chunkObject = "cmpl-", "text_completion", "text_completion"
		}
		choice := func(b []byte, text string, first, final bool) []byte {
			b = append(b, `,"choices":[{"index":0,`...)
			switch {
			case endpoint == Completions:
				b = append(b, `"text":`...)
				b = appendJSONString(b, text)
			case p.stream && final:
				b = append(b, `"delta":{}`...)
			case p.stream && first:
				b = append(b, `"delta":{"role":"assistant","content":`...)
				b = appendJSONString(b, text)
				b = append(b, '}')
			case p.stream:
				b = append(b, `"delta":{"content":`...)
				b = appendJSONString(b, text)
				b = append(b, '}')
			default:
				b = append(b, `"message":{"role":"assistant","content":`...)
				b = appendJSONString(b, text)
				b = append(b, '}')
			}
			if final {
				return append(b, `,"finish_reason":"stop"}]`...)
			}
			return append(b, `,"finish_reason":null}]`...)
		}
		if !p.stream {
			b := head(make([]byte, 0, 384), prefix, object)
			b = choice(b, replyText, true, true)
			b = append(b, ',')
			return append(usage(b, completion), '}'), nil
		}
		for word := range strings.SplitAfterSeq(replyText, " ") {
			b := append(make([]byte, 0, 256), "data: "...)
			b = head(b, prefix, chunkObject)
			b = choice(b, word, chunks == nil, false)
			chunks = append(chunks, append(b, "}\n\n"...))
		}
		b := append(make([]byte, 0, 320), "data: "...)
		b = head(b, prefix, chunkObject)
		b = choice(b, "", false, true)
		b = append(b, ',')
		b = append(usage(b, completion), "}\n\n"...)
		return nil, append(chunks, b, []byte("data: [DONE]\n\n"))
	case Embeddings:
		b := make([]byte, 0, 64+len(p.inputs)*96)
		b = append(b, `{"object":"list","data":[`...)
		for i, in := range p.inputs {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"object":"embedding","index":`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `,"embedding":[`...)
			// The same text always gets the same vector, so callers can
			// check that answers match their inputs.
			h := fnv1a([]byte(in))
			for j := range 8 {
				if j > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendFloat(b, float64(byte(h>>(8*j)))/127.5-1, 'f', 4, 64)
			}
			b = append(b, "]}"...)
		}
		b = append(b, `],"model":`...)
		b = appendJSONString(b, p.model)
		b = append(b, ',')
		return append(usage(b, 0), '}'), nil
	}
	b := head(make([]byte, 0, 192), "img-", "list") // images
	b = append(b, `,"data":[{"index":0,"url":"https://images.invalid/img-`...)
	b = strconv.AppendUint(b, s.seq, 10)
	return append(b, `.png"}]}`...), nil
}

// togetherError is Together's error form.
func togetherError(typ, code, msg string) []byte {
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, typ)
	b = append(b, `,"param":null,"code":`...)
	b = appendJSONString(b, code)
	return append(b, "}}"...)
}

// appendJSONString appends s as a JSON string. s is valid UTF-8 (it comes
// from a decoded body or from the server), so only quotes, backslashes and
// control characters need escaping.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// modelType is the type GET /v1/models reports for a model, guessed from
// its name as Config.Models documents.
func modelType(name string) string {
	lower := strings.ToLower(name)
	for _, k := range [...]string{"bge", "bert", "embed", "e5-", "gte"} {
		if strings.Contains(lower, k) {
			return "embedding"
		}
	}
	if strings.Contains(lower, "flux") || strings.Contains(lower, "stable-diffusion") {
		return "image"
	}
	return "chat"
}

// modelsBody is GET /v1/models in Together's form: a JSON array of models.
func modelsBody(models []string, types map[string]string) []byte {
	type model struct {
		ID           string `json:"id"`
		Object       string `json:"object"`
		Created      int64  `json:"created"`
		Type         string `json:"type"`
		Organization string `json:"organization"`
	}
	list := make([]model, 0, len(models))
	for _, m := range models {
		org, _, ok := strings.Cut(m, "/")
		if !ok {
			org = ""
		}
		list = append(list, model{ID: m, Object: "model", Type: types[m], Organization: org})
	}
	b, _ := json.Marshal(list) // cannot fail: strings only
	return b
}
