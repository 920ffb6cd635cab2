package transport

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"net/http"
	"unicode/utf8"
)

// FindModel returns the top-level "model" string of the JSON object body.
//
// It scans the top-level object only: nested objects, arrays and strings
// are skipped (escapes and all), not decoded, so the cost is one pass over
// the bytes with no allocation but the returned string. ok is false when
// body is not a JSON object, has no top-level "model", has more than one
// (which one a server honours differs between parsers, so steady honours
// none), or has a model that is not a string.
//
// The scan checks the structure of the top-level object and that brackets
// nest, not every byte of every nested value: a body it accepts may still
// be refused by a strict parser, which the server then reports.
func FindModel(body []byte) (model string, ok bool) {
	start, end, ok := modelSpan(body)
	if !ok {
		return "", false
	}
	return decodeModel(body[start:end])
}

// RewriteModel returns a copy of body in which the value of the top-level
// "model" is replaced by model; every other byte is as it was, so
// whitespace, member order and numbers the caller wrote survive. ok is false,
// and the result nil, when [FindModel] would find no model in body.
func RewriteModel(body []byte, model string) (rewritten []byte, ok bool) {
	start, end, ok := modelSpan(body)
	if !ok || !validModel(body[start:end]) {
		return nil, false
	}
	return spliceModel(body, start, end, model), true
}

// RequestModel reads the top-level "model" of req's JSON body (see
// [FindModel]), without taking the body from the request that is sent on.
//
// Under [Inspect] it is what Inspect read ([InfoOf]), and send is req. A
// request with GetBody is read through a fresh body from GetBody, which is
// scanned as it streams and not kept, and send is req itself; an
// in-memory body (one GetBody gives whole at once) is read only at its
// ends when the model is there, as SDKs write it (see below). A request
// without GetBody has its body read (at most limit bytes; 0 means
// [DefaultReplayLimit], negative means never read), and send is a shallow
// copy of req whose body replays the bytes read, with GetBody set; req's
// own body is consumed and closed. model is "" when the body is empty,
// larger than limit, not JSON, or has no model; send is then still the
// request to send. The error is a failure reading the body, which is then
// closed; nothing must be sent.
//
// A body is one JSON object with one top-level string "model"; where the
// model is its first member, or among the members after the last large
// value (the messages), the rest of the body is not read, so a second
// "model" there, which no encoder writes, goes unnoticed. The ends of the
// last few bodies whose model was read after their messages are kept (at
// most eight, of 1 KiB each, from the model's key to the end): a body
// that ends as one of them did, as an application's requests nearly
// always do, has the same model, found with one comparison.
func RequestModel(req *http.Request, limit int64) (model string, send *http.Request, err error) {
	if req.Body == nil || req.Body == http.NoBody {
		return "", req, nil // no body names no model, inspected or not
	}
	if info := InfoOf(req); info != nil {
		return info.Model, req, nil
	}
	if limit == 0 {
		limit = DefaultReplayLimit
	}
	if req.GetBody != nil {
		if limit < 0 {
			limit = DefaultReplayLimit // reading through GetBody costs no buffer
		}
		return modelOfGetBody(req, limit), req, nil
	}
	buf, send, err := replayBody(req, limit)
	if err != nil {
		return "", nil, err
	}
	if buf != nil {
		model = modelOfBuffer(buf)
	}
	return model, send, nil
}

// replayBody reads the body of req, which has no GetBody, with [Replay]: it
// returns the bytes (nil when larger than limit) and the request that sends
// them on.
func replayBody(req *http.Request, limit int64) (*bodyBuffer, *http.Request, error) {
	var r Replay
	if err := r.Reset(req, limit); err != nil {
		return nil, nil, err
	}
	send, err := r.Request()
	if err != nil {
		r.Close()
		return nil, nil, err
	}
	return r.buf, send, nil
}

// modelSpan returns the span [start, end) of the top-level "model" string
// value of the JSON object b, its quotes included, so that a rewrite
// replaces exactly those bytes.
//
// It is hand-written rather than gjson/sjson because BenchmarkModel finds
// them level (find and rewrite of a 100 KB chat body run at the same speed,
// the copy dominating), and this way package transport keeps to the
// standard library, refuses a duplicated top-level model (gjson takes the
// first, most servers the last) and checks the body is one object.
func modelSpan(b []byte) (start, end int, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' { // {}: no model
		return 0, 0, false
	}
	found := false
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, false
		}
		keyEnd := scanString(b, i)
		if keyEnd < 0 {
			return 0, 0, false
		}
		isModel := isModelKey(b[i:keyEnd])
		i = skipSpace(b, keyEnd)
		if i >= len(b) || b[i] != ':' {
			return 0, 0, false
		}
		i = skipSpace(b, i+1)
		if isModel {
			if found || i >= len(b) || b[i] != '"' {
				return 0, 0, false
			}
			e := scanString(b, i)
			if e < 0 {
				return 0, 0, false
			}
			start, end, found = i, e, true
			i = e
		} else if i = skipValue(b, i); i < 0 {
			return 0, 0, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return 0, 0, false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != ',' {
			return 0, 0, false
		}
		i = skipSpace(b, i+1)
	}
	if skipSpace(b, i+1) != len(b) {
		return 0, 0, false
	}
	return start, end, found
}

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// scanString returns the index just past the string that starts with the
// quote at b[i], or -1 when it is not terminated. It looks at eight bytes at
// a time for a quote or a backslash (the zero-byte test of "Bit Twiddling
// Hacks", exact for the first match), and steps over each escape, so long
// strings cost about a byte-wise memchr.
// word is the eight bytes of p from i, as a little-endian word. (Made
// from an array of eight, which costs fewer bounds checks than
// binary.LittleEndian.Uint64(p[i:]), whose slice may be short.)
func word(p []byte, i int) uint64 {
	return binary.LittleEndian.Uint64((*[8]byte)(p[i : i+8])[:])
}

func scanString(b []byte, i int) int {
	j := i + 1
	for j+8 <= len(b) {
		x := word(b, j)
		q, s := x^quotes, x^backslashes
		m := ((q-lowBits)&^q | (s-lowBits)&^s) & highBits
		if m == 0 {
			j += 8
			continue
		}
		j += bits.TrailingZeros64(m) >> 3
		if b[j] == '"' {
			return j + 1
		}
		j += 2 // a backslash and the byte it escapes
	}
	for j < len(b) {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			j += 2
		default:
			j++
		}
	}
	return -1
}

const (
	lowBits     = 0x0101010101010101
	highBits    = 0x8080808080808080
	quotes      = '"' * lowBits
	backslashes = '\\' * lowBits
)

// isModelKey reports whether the quoted key s decodes to "model".
func isModelKey(s []byte) bool {
	if string(s) == `"model"` {
		return true
	}
	// Escaped, it is longer: at least one of its letters is six bytes
	// (\u006d), so twelve in all, at most thirty-two. It starts with an m
	// or an escape, and ends with an l or the last digit of \u006c.
	n := len(s)
	if n < 12 || n > 32 || s[1] != 'm' && s[1] != '\\' {
		return false
	}
	if c := s[n-2]; c != 'l' && c != 'c' && c != 'C' || bytes.IndexByte(s, '\\') < 0 {
		return false
	}
	var k string
	return json.Unmarshal(s, &k) == nil && k == "model"
}

// plainString reports whether the quoted JSON string s means its own bytes:
// no escapes, and valid UTF-8 (encoding/json would replace invalid bytes).
func plainString(s []byte) bool {
	inner := s[1 : len(s)-1]
	return bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner)
}

// validModel reports whether the quoted JSON string s decodes.
func validModel(s []byte) bool {
	if plainString(s) {
		return true
	}
	_, ok := decodeModel(s)
	return ok
}

// decodeModel decodes the quoted JSON string s.
func decodeModel(s []byte) (string, bool) {
	if m, ok := internedName(s[1 : len(s)-1]); ok {
		return m, true // a name seen before: its bytes are known to mean themselves
	}
	if plainString(s) {
		return modelName(s[1 : len(s)-1]), true
	}
	var m string
	if json.Unmarshal(s, &m) != nil {
		return "", false
	}
	return m, true
}

// skipValue returns the index just past the JSON value at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; c {
	case '"':
		return scanString(b, i)
	case '{', '[':
		return skipNested(b, i)
	case 't':
		return skipLiteral(b, i, "true")
	case 'f':
		return skipLiteral(b, i, "false")
	case 'n':
		return skipLiteral(b, i, "null")
	default:
		if c != '-' && (c < '0' || c > '9') {
			return -1
		}
		j := i + 1
		for j < len(b) && isNumberByte(b[j]) {
			j++
		}
		return j
	}
}

func isNumberByte(c byte) bool {
	return (c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

func skipLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// maxNesting bounds the depth skipNested follows; a deeper value makes the
// body one with no model, which is passed through untouched.
const maxNesting = 512

// skipNested returns the index just past the object or array at b[i], or
// -1. It matches brackets and skips strings; it does not check what lies
// between them, which only the server has to understand.
func skipNested(b []byte, i int) int {
	var open [maxNesting / 64]uint64 // bit set: that level is an array
	depth := 0
	for j := i; j < len(b); j++ {
		c := b[j]
		if !structural[c] {
			continue
		}
		switch c {
		case '{', '[':
			if depth == maxNesting {
				return -1
			}
			w, bit := depth/64, uint64(1)<<(depth%64)
			if c == '[' {
				open[w] |= bit
			} else {
				open[w] &^= bit
			}
			depth++
		case '}', ']':
			depth--
			isArray := open[depth/64]&(uint64(1)<<(depth%64)) != 0
			if isArray != (c == ']') {
				return -1
			}
			if depth == 0 {
				return j + 1
			}
		case '"':
			e := scanString(b, j)
			if e < 0 {
				return -1
			}
			j = e - 1
		}
	}
	return -1
}

// structural marks the bytes skipNested stops at.
var structural = [256]bool{'{': true, '}': true, '[': true, ']': true, '"': true}

// spliceModel returns b with b[start:end] replaced by model as a JSON string.
func spliceModel(b []byte, start, end int, model string) []byte {
	q := quoteModel(model)
	out := make([]byte, 0, len(b)-(end-start)+len(q))
	out = append(out, b[:start]...)
	out = append(out, q...)
	return append(out, b[end:]...)
}

// quoteModel returns model as a JSON string. Model names are plain ASCII,
// quoted as they are; anything else goes through encoding/json, whose
// escaping every JSON parser reads.
func quoteModel(model string) []byte {
	plain := true
	for i := 0; i < len(model); i++ {
		if c := model[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		q := make([]byte, 0, len(model)+2)
		q = append(q, '"')
		q = append(q, model...)
		return append(q, '"')
	}
	q, _ := json.Marshal(model) // a string always marshals
	return q
}

// MaxKeyLen bounds the keys of steady's per-model maps (a model's breaker,
// its limiters): no real model name comes near it, and a client that
// sends thousands of long names must not be given their size in memory.
const MaxKeyLen = 256

// BoundKey returns key when it is at most [MaxKeyLen] bytes, and otherwise
// a key of about 100 bytes that still tells it apart from others: its first
// 64 bytes, then "…#" and the 64-bit FNV-1a hash of the whole in hex. The
// 64 bytes are cut between two characters (up to three bytes fewer, when
// the 65th byte is inside a character), so that a key of valid UTF-8 is
// bounded to one: it names limiters and breakers in errors, events, logs
// and a store's key names. The hash covers every byte of key, those of a
// character cut off included.
func BoundKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	const prefix = 64
	n := prefix
	for n > prefix-(utf8.UTFMax-1) && !utf8.RuneStart(key[n]) {
		n-- // key[n] continues the character before it
	}
	b := make([]byte, 0, prefix+len("…#")+16)
	b = append(b, key[:n]...)
	b = append(b, "…#"...)
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hex[h>>uint(shift)&0xf])
	}
	return string(b)
}
