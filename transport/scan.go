package transport

import (
	"bytes"
	"encoding/json"
	"math"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"
)

// scanner reads a JSON request body as it streams past, in pieces of any
// size (it is an io.Writer), and keeps what steady needs of it: the
// top-level "model" (where it is, and whether there is exactly one), the
// limit the request sets on generated tokens, and, when asked, how many
// characters of prompt text it holds. It holds none of the body: a body of
// any size costs the scanner's few hundred bytes, so a 30 MiB request read
// through GetBody is never 30 MiB in memory again.
//
// It checks what [FindModel] checks: the top level is one object whose
// keys, colons, commas and values (strings, literals, numbers) are where
// they belong, and nested values have brackets that match and strings
// that end. A model is found by the scanner exactly when FindModel finds
// it (fuzz_scan_test.go holds them to that).
type scanner struct {
	count bool // count the characters of prompt text

	// As a writer: the most bytes it takes (-1: no limit), and, for a body
	// of a declared length (whole > 0) written at once, the model located
	// at either end of it without a scan (see locateModel).
	limit    int64
	whole    int64
	located  bool
	locModel string

	// What was found.
	model      []byte // the raw bytes of the model's string, quotes off
	models     int    // top-level "model" members seen
	modelBad   bool   // one was not a string, or too long to keep
	modelStart int64  // offset of the model value's opening quote
	modelEnd   int64  // offset just past its closing quote
	maxTokens  float64
	chars      int64
	bad        bool // not a JSON object
	closed     bool // the top-level object ended

	off  int64 // bytes scanned
	base int64 // the offset of the piece being scanned

	st    scanState
	ret   scanState // where a string returns to when it ends
	str   strKind   // what the string being read is to steady
	depth int       // containers open, the top-level object included
	open  [maxNesting/64 + 1]uint64
	arr   bool // the innermost container open is an array

	// member is what the top-level member being read is to steady.
	member member
	// text: the current top-level member's value holds prompt text.
	text bool
	// wantKey: inside nested values, the next string is a key.
	wantKey bool
	// keyText: the last key read inside prompt text was "content",
	// "text" or "output", or one of a tool's (see keyTool), so a string
	// value after it is text.
	keyText bool
	// keyTool: the last key read inside prompt text was "arguments" or
	// "input", a tool call's, so a container value after it is a tool's:
	// every string in it is text, keys too. It lasts until that value
	// begins, or the container of the key ends.
	keyTool bool
	// tool is the depth of the tool's container being read (see keyTool),
	// or 0.
	tool int

	key    [maxKey]byte // a key being read, where it matters
	keyLen int          // > maxKey: too long to be one steady looks for
	keyEsc bool

	hex    int      // hex digits left of a \u escape in text
	scalar [32]byte // a top-level number or literal being read
	scLen  int
}

// maxKey is the longest key kept: every key steady looks for is shorter,
// even written with escapes of a few of its letters.
const maxKey = 64

// maxModelBytes bounds the model kept: no model name comes near it, and a
// body whose "model" is megabytes long gets no model rather than a copy.
const maxModelBytes = 64 << 10

type scanState uint8

const (
	stBegin      scanState = iota // whitespace, then '{'
	stKeyOrClose                  // after '{': a key or '}'
	stKey                         // after ',': a key
	stColon                       // after a key: ':'
	stValue                       // after ':': a value
	stAfter                       // after a value: ',' or '}'
	stNested                      // inside a nested value: brackets and strings
	stString                      // inside a string
	stEscape                      // after a backslash in a string
	stHex                         // inside a \u escape of text
	stScalar                      // inside a top-level number or literal
	stTrailing                    // after the top-level object: whitespace only
	stBad                         // not a JSON object: the rest is ignored
)

type strKind uint8

const (
	strSkip  strKind = iota // a string nothing is taken from
	strCount                // prompt text: its characters are counted
	strKey                  // a key that may matter: kept
	strModel                // the model: kept
)

// member is what a top-level member is to steady.
type member uint8

const (
	memberOther member = iota
	memberModel
	memberText      // prompt text: messages, prompt, input, system, instructions
	memberMaxTokens // max_tokens and its newer names
)

// Write scans p, the next bytes of the body. A body that is not a JSON
// object is noted, and the rest of it skipped; the error ends the copy
// when the body is over the limit, or its model was located at once.
func (s *scanner) Write(p []byte) (int, error) {
	if s.limit >= 0 && s.off+int64(len(p)) > s.limit {
		return 0, errStop
	}
	if s.off == 0 && s.whole > 0 && int64(len(p)) == s.whole {
		if m, _, decided := locateModel(p); decided {
			s.locModel, s.located = m, true
			return len(p), errStop
		}
	}
	s.scan(p)
	return len(p), nil
}

func (s *scanner) fail() { s.bad, s.st = true, stBad }

// ok reports whether the whole body was one JSON object.
func (s *scanner) ok() bool { return !s.bad && s.closed && s.st == stTrailing }

// foundModel returns the model of a body that was one JSON object with
// exactly one top-level string "model", as FindModel would.
func (s *scanner) foundModel() (string, bool) {
	if !s.ok() || s.models != 1 || s.modelBad {
		return "", false
	}
	return decodeRaw(s.model)
}

func (s *scanner) reset(count bool) {
	model := s.model
	*s = scanner{count: count, limit: -1}
	s.model = model[:0] // a long model's buffer is kept for the next
}

var scannerPool = sync.Pool{New: func() any { return new(scanner) }}

func getScanner(count bool) *scanner {
	s := scannerPool.Get().(*scanner)
	s.reset(count)
	return s
}

func putScanner(s *scanner) {
	if cap(s.model) > 1<<10 {
		s.model = nil // a very long model's buffer is not kept
	}
	s.locModel = ""
	scannerPool.Put(s)
}

// innermostIsArray reads from the open containers whether the innermost
// is an array (kept in arr, which is read far more often than it changes).
func (s *scanner) innermostIsArray() bool {
	d := s.depth - 1
	return s.open[d/64]&(uint64(1)<<(d%64)) != 0
}

// push opens a container.
func (s *scanner) push(array bool) bool {
	if s.depth == maxNesting+1 { // the top-level object and maxNesting in it
		s.fail()
		return false
	}
	w, bit := s.depth/64, uint64(1)<<(s.depth%64)
	if array {
		s.open[w] |= bit
	} else {
		s.open[w] &^= bit
	}
	s.depth++
	s.arr = array
	return true
}

// scan runs the state machine over p.
func (s *scanner) scan(p []byte) {
	s.base = s.off
	s.off += int64(len(p))
	i, n := 0, len(p)
	for i < n {
		switch s.st {
		case stBad:
			return
		case stNested:
			i = s.nested(p, i)
			continue
		case stString:
			if s.str == strSkip || s.str == strCount {
				i = s.plainString(p, i)
			} else {
				i = s.inString(p, i)
			}
			continue
		case stEscape:
			// An escape is a backslash and the byte after it, whatever it
			// is, as FindModel reads it; only a model is decoded, and
			// checked then.
			c := p[i]
			i++
			s.keep(c)
			s.st = stString
			if c == 'u' && s.str == strCount {
				s.hex, s.st = 4, stHex
			}
			continue
		case stHex:
			// The four digits of a \u escape of text, which is one
			// character and counted as one already.
			if !isHex(p[i]) {
				s.st = stString
				continue
			}
			i++
			if s.hex--; s.hex == 0 {
				s.st = stString
			}
			continue
		case stScalar:
			c := p[i]
			if isScalarByte(c) {
				if s.scLen < len(s.scalar) {
					s.scalar[s.scLen] = c
				}
				s.scLen++
				i++
				continue
			}
			if !s.endScalar() {
				return
			}
			s.st = stAfter
			continue
		}
		c := p[i]
		i++
		if isSpace(c) {
			continue
		}
		switch s.st {
		case stBegin:
			if c != '{' {
				s.fail()
				return
			}
			s.push(false)
			s.st = stKeyOrClose
		case stKeyOrClose, stKey:
			switch {
			case c == '}' && s.st == stKeyOrClose:
				s.depth = 0
				s.closed, s.st = true, stTrailing
			case c == '"':
				s.st, s.ret, s.str = stString, stColon, strKey
				s.keyLen, s.keyEsc = 0, false
			default:
				s.fail()
				return
			}
		case stColon:
			if c != ':' {
				s.fail()
				return
			}
			s.st = stValue
		case stValue:
			if !s.startValue(c, s.base+int64(i-1)) {
				return
			}
		case stAfter:
			switch c {
			case ',':
				s.st = stKey
			case '}':
				s.depth = 0
				s.closed, s.st = true, stTrailing
			default:
				s.fail()
				return
			}
		case stTrailing:
			s.fail()
			return
		}
	}
}

// startValue begins the value of a top-level member, whose first byte c
// is at offset at. It reports false when c starts no value.
func (s *scanner) startValue(c byte, at int64) bool {
	if s.member == memberModel {
		s.models++
		if c != '"' {
			s.modelBad = true
		}
	}
	switch c {
	case '"':
		s.st, s.ret = stString, stAfter
		switch {
		case s.member == memberModel:
			s.str = strModel
			s.modelStart = at
			s.model = s.model[:0]
		case s.text && s.count:
			s.str = strCount
		default:
			s.str = strSkip
		}
		return true
	case '{', '[':
		s.push(c == '[')
		s.st = stNested
		s.wantKey = c == '{'
		s.keyText, s.keyTool, s.tool = false, false, 0
		return true
	}
	if c != '-' && (c < '0' || c > '9') && c != 't' && c != 'f' && c != 'n' {
		s.fail()
		return false
	}
	s.st = stScalar
	s.scalar[0], s.scLen = c, 1
	return true
}

// nested reads the inside of a top-level member's value from p[i:], as
// skipNested does: brackets and strings, and, inside prompt text, which
// strings are keys and which are text. It returns where it stopped.
func (s *scanner) nested(p []byte, i int) int {
	for i < len(p) {
		c := p[i]
		i++
		if !structuralScan[c] {
			continue
		}
		switch c {
		case '"':
			// A string that ends in p with no escape before its closing
			// quote is read here, as the states would read it. (A string
			// ends after a key as after a value: the next string is no key.)
			var j int
			switch {
			case s.tool > 0:
				// Inside a tool's arguments or input, keys are text too.
				var n int
				j, n = countString(p, i)
				s.chars += int64(n)
				s.str = strCount
			case s.wantKey && s.text && s.count:
				if i+8 <= len(p) {
					// A key of fewer than eight bytes, read in one word.
					x := word(p, i)
					if k := bits.TrailingZeros64(plainASCII(x)&highBits) >> 3; k < 8 && p[i+k] == '"' {
						s.keyTool = k == 5 && x&(1<<40-1) == inputWord
						s.keyText = k == 7 && x&(1<<56-1) == contentWord || k == 4 && uint32(x) == textWord ||
							k == 6 && x&(1<<48-1) == outputWord || s.keyTool
						s.wantKey = false
						i += k + 1
						continue
					}
				}
				if j = findQuoteOrBackslash(p, i); j < len(p) && p[j] == '"' {
					k := p[i:j]
					s.keyTool = string(k) == "arguments" || string(k) == "input"
					s.keyText = string(k) == "content" || string(k) == "text" || string(k) == "output" || s.keyTool
					s.wantKey = false
					i = j + 1
					continue
				}
				s.st, s.ret, s.str = stString, stNested, strKey
				s.keyLen, s.keyEsc = 0, false
				return i
			case !s.wantKey && s.text && s.count && (s.keyText || s.arr):
				var n int
				j, n = countString(p, i)
				s.chars += int64(n)
				s.str = strCount
			default:
				j = findQuoteOrBackslash(p, i)
				s.str = strSkip
			}
			if j < len(p) && p[j] == '"' {
				s.wantKey = false
				i = j + 1
				continue
			}
			// An escape, or the end of p: the string is read on from there,
			// escapes and all, as far as p goes.
			s.st, s.ret = stString, stNested
			if i = s.plainString(p, j); s.st != stNested {
				return i
			}
		case '{', '[':
			if !s.push(c == '[') {
				return len(p)
			}
			s.wantKey = c == '{'
			if s.keyTool {
				s.keyTool = false
				if s.tool == 0 {
					s.tool = s.depth
				}
			}
		case '}', ']':
			if s.arr != (c == ']') {
				s.fail()
				return len(p)
			}
			if s.depth == s.tool {
				s.tool = 0
			}
			s.depth--
			s.arr = s.innermostIsArray()
			s.wantKey, s.keyTool = false, false
			if s.depth == 1 {
				s.st = stAfter
				return i
			}
		case ',':
			s.wantKey = !s.arr
		case ':':
			s.wantKey = false
		}
	}
	return i
}

// contentWord, textWord, outputWord and inputWord are the keys "content",
// "text", "output" and "input" as the low bytes of a little-endian word.
const (
	contentWord = uint64('c') | uint64('o')<<8 | uint64('n')<<16 | uint64('t')<<24 | uint64('e')<<32 | uint64('n')<<40 | uint64('t')<<48
	textWord    = uint32('t') | uint32('e')<<8 | uint32('x')<<16 | uint32('t')<<24
	outputWord  = uint64('o') | uint64('u')<<8 | uint64('t')<<16 | uint64('p')<<24 | uint64('u')<<32 | uint64('t')<<40
	inputWord   = uint64('i') | uint64('n')<<8 | uint64('p')<<16 | uint64('u')<<24 | uint64('t')<<32
)

// structuralScan marks the bytes the nested reading stops at.
var structuralScan = [256]bool{'{': true, '}': true, '[': true, ']': true, '"': true, ',': true, ':': true}

// endScalar checks the top-level number or literal just read, and keeps a
// max-tokens value.
func (s *scanner) endScalar() bool {
	if s.scLen > len(s.scalar) {
		// No literal is that long, and no number steady keeps.
		if s.scalar[0] != '-' && (s.scalar[0] < '0' || s.scalar[0] > '9') {
			s.fail()
			return false
		}
		for _, b := range s.scalar {
			if !isNumberByte(b) {
				s.fail()
				return false
			}
		}
		return true // the bytes past the array are not checked
	}
	v := s.scalar[:s.scLen]
	switch v[0] {
	case 't', 'f', 'n':
		if string(v) != "true" && string(v) != "false" && string(v) != "null" {
			s.fail()
			return false
		}
		return true
	}
	for _, b := range v[1:] {
		if !isNumberByte(b) {
			s.fail()
			return false
		}
	}
	if s.member == memberMaxTokens {
		if f, err := strconv.ParseFloat(string(v), 64); err == nil && f > 0 && !math.IsInf(f, 0) {
			s.maxTokens = max(s.maxTokens, min(math.Floor(f), math.MaxInt32))
		}
	}
	return true
}

// keep notes a byte of an escape in a string that is kept.
func (s *scanner) keep(c byte) {
	switch s.str {
	case strKey:
		s.keepKey(c)
	case strModel:
		s.keepModel(c)
	}
}

func (s *scanner) keepKey(c byte) {
	if s.keyLen < maxKey {
		s.key[s.keyLen] = c
	}
	s.keyLen++
}

func (s *scanner) keepModel(c byte) {
	if len(s.model) < maxModelBytes {
		s.model = append(s.model, c)
	} else {
		s.modelBad = true
	}
}

// inString reads the bytes of a string that is kept (a key, the model)
// from p[i:], and returns where it stopped: at the end of p, or past the
// closing quote, or past a backslash. Other strings are plainString's.
func (s *scanner) inString(p []byte, i int) int {
	j := findQuoteOrBackslash(p, i)
	switch s.str {
	case strKey:
		for _, c := range p[i:j] {
			s.keepKey(c)
		}
		if j < len(p) && p[j] == '\\' {
			s.keyEsc = true
			s.keepKey('\\')
		}
	case strModel:
		if room := maxModelBytes - len(s.model); j-i > room {
			s.modelBad = true
			s.model = append(s.model, p[i:i+room]...)
		} else {
			s.model = append(s.model, p[i:j]...)
		}
		if j < len(p) && p[j] == '\\' {
			s.keepModel('\\')
		}
	}
	if j == len(p) {
		return j
	}
	if p[j] == '\\' {
		s.st = stEscape
		return j + 1
	}
	s.endString(j)
	return j + 1
}

// endString ends the string being read, whose closing quote is at p[j]
// of the piece being scanned.
func (s *scanner) endString(j int) {
	s.st = s.ret
	switch {
	case s.ret == stColon:
		s.endKey()
	case s.ret == stNested:
		if s.wantKey {
			s.wantKey = false
			if s.str == strKey {
				s.keyTool = s.keyIs("arguments") || s.keyIs("input")
				s.keyText = s.keyIs("content") || s.keyIs("text") || s.keyIs("output") || s.keyTool
			}
		}
	case s.str == strModel:
		s.modelEnd = s.base + int64(j) + 1
	}
}

// plainString reads, from p[i:], a string nothing is kept of (strSkip) or
// whose characters are counted (strCount), escapes included, as the
// escape states would read it byte by byte: it returns past the closing
// quote, the string ended, or at the end of p, where the reading stands
// in s.st (inside the string, after its backslash, or in a \u escape's
// digits). Most strings are read whole in one call.
func (s *scanner) plainString(p []byte, i int) int {
	count := s.str == strCount
	for {
		var j int
		if count {
			var n int
			j, n = countString(p, i)
			s.chars += int64(n)
		} else {
			j = findQuoteOrBackslash(p, i)
		}
		if j == len(p) {
			return j
		}
		if p[j] == '"' {
			s.endString(j)
			return j + 1
		}
		// An escape: the backslash and the byte after it, one character.
		if count {
			s.chars++
		}
		if j+1 == len(p) {
			s.st = stEscape
			return len(p)
		}
		i = j + 2
		if count && p[j+1] == 'u' {
			// A \u escape's digits, up to four, are the same character.
			d := 0
			for d < 4 && i < len(p) && isHex(p[i]) {
				i++
				d++
			}
			if d < 4 && i == len(p) {
				s.st, s.hex = stHex, 4-d
				return i
			}
		}
	}
}

// keyIs reports whether the key just read is k.
func (s *scanner) keyIs(k string) bool {
	if s.keyLen > maxKey {
		return false
	}
	if !s.keyEsc {
		return string(s.key[:s.keyLen]) == k
	}
	q := make([]byte, 0, s.keyLen+2)
	q = append(append(append(q, '"'), s.key[:s.keyLen]...), '"')
	var d string
	return json.Unmarshal(q, &d) == nil && d == k
}

// endKey classifies the top-level key just read.
func (s *scanner) endKey() {
	s.text = false
	switch {
	case s.keyIs("model"):
		s.member = memberModel
	case s.keyIs("messages"), s.keyIs("prompt"), s.keyIs("input"), s.keyIs("system"), s.keyIs("instructions"):
		s.member, s.text = memberText, true
	case s.keyIs("max_tokens"), s.keyIs("max_completion_tokens"), s.keyIs("max_output_tokens"):
		s.member = memberMaxTokens
	default:
		s.member = memberOther
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// isScalarByte reports whether c may be part of a number or literal.
func isScalarByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// findQuoteOrBackslash returns the index of the first quote or backslash
// of p at or after i, or len(p). It looks at eight bytes at a time, as
// scanString does.
func findQuoteOrBackslash(p []byte, i int) int {
	for i+8 <= len(p) {
		x := word(p, i)
		q, s := x^quotes, x^backslashes
		m := ((q-lowBits)&^q | (s-lowBits)&^s) & highBits
		if m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for ; i < len(p); i++ {
		if c := p[i]; c == '"' || c == '\\' {
			return i
		}
	}
	return i
}

// countString is findQuoteOrBackslash and countRunes of the bytes before
// what it finds, in one pass, reading on past the escapes it can read
// whole: it returns the index j of the string's closing quote, of a
// backslash whose escape ends within six bytes of the end of p or is a \u
// not followed by four hex digits (left to plainString), or len(p); and
// the characters before j, each escape one, as plainString counts them. A
// prompt's escapes (its line ends, its quotes) do not end the eight-byte
// loop.
func countString(p []byte, i int) (j, n int) {
	for i+8 <= len(p) {
		x := word(p, i)
		var k int // the bytes of x before the quote or backslash found
		if x&highBits == 0 {
			// Eight ASCII bytes, as most of a prompt is: each is one
			// character, and plainASCII marks a quote or a backslash
			// exactly.
			t := plainASCII(x) & highBits
			if t == 0 {
				n += 8
				i += 8
				continue
			}
			k = bits.TrailingZeros64(t) >> 3
			n += k
		} else {
			// A multi-byte character: the first quote or backslash is
			// found as findQuoteOrBackslash finds it, and the bytes that
			// continue a character before it are not counted.
			q, s := x^quotes, x^backslashes
			m := ((q-lowBits)&^q | (s-lowBits)&^s) & highBits
			// Continuation bytes are 10xxxxxx: z marks each.
			c := (x & 0xC0C0C0C0C0C0C0C0) ^ highBits
			z := ^(((c & lowSeven) + lowSeven) | c) & highBits
			if m == 0 {
				n += 8 - bits.OnesCount64(z)
				i += 8
				continue
			}
			k = bits.TrailingZeros64(m) >> 3
			n += k - bits.OnesCount64(z&(1<<(8*k)-1))
		}
		j = i + k
		if p[j] == '"' || j+6 > len(p) {
			return j, n
		}
		// An escape: the backslash and the byte after it, one character;
		// a \u escape's four digits are the same character.
		i = j + 2
		if p[j+1] == 'u' {
			if !isHex(p[j+2]) || !isHex(p[j+3]) || !isHex(p[j+4]) || !isHex(p[j+5]) {
				return j, n
			}
			i = j + 6
		}
		n++
	}
	j = findQuoteOrBackslash(p, i)
	return j, n + countRunes(p[i:j])
}

// plainASCII has the high bit of each byte of x set that is not ASCII, or
// is a quote or a backslash: a byte b below 0x80 is a quote exactly when
// (b^'"')+0x7f has its high bit clear, with no carry out of the byte; and
// so for a backslash. A byte from 0x80 has its own high bit set, and may
// carry into the byte after it: the first byte marked is exact.
func plainASCII(x uint64) uint64 {
	return ^(((x ^ quotes) + lowSeven) & ((x ^ backslashes) + lowSeven)) | x
}

// countRunes counts the characters of p, UTF-8 that may be cut at either
// end: the bytes that do not continue a character.
func countRunes(p []byte) int {
	n := len(p)
	i := 0
	for ; i+8 <= len(p); i += 8 {
		x := word(p, i)
		if x&highBits == 0 {
			continue // ASCII
		}
		// Continuation bytes are 10xxxxxx: t has a zero byte for each.
		t := (x & 0xC0C0C0C0C0C0C0C0) ^ highBits
		z := ^(((t & 0x7F7F7F7F7F7F7F7F) + 0x7F7F7F7F7F7F7F7F) | t) & highBits
		n -= bits.OnesCount64(z)
	}
	for ; i < len(p); i++ {
		if p[i]&0xC0 == 0x80 {
			n--
		}
	}
	return n
}

// decodeRaw decodes the raw bytes of a JSON string, quotes off.
func decodeRaw(raw []byte) (string, bool) {
	if m, ok := internedName(raw); ok {
		return m, true
	}
	if bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		return modelName(raw), true
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	return decodeModel(q)
}
