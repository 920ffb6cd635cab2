package transport

import (
	"math/bits"
)

// locateBudget is how far from the end of a body locateModel reads
// backward before it leaves the body to the full scan: a few small members
// after the model (tools, response_format) are stepped over, a long history
// of messages is not.
const locateBudget = 4 << 10

// locateModel finds the top-level "model" of the JSON object body by
// reading as little of it as its layout allows: its first member, then its
// members from the end backward, while they lie within locateBudget of it.
// SDKs write the model either first (go-openai) or after the messages
// (openai-go, anthropic-sdk-go, encoders that sort keys), so either way the
// bulk of a chat request, its messages, is not read.
//
// decided is false when the model was in neither place: the whole body
// must be scanned. When decided, model and ok are what [FindModel] would
// say of a body that is well-formed where it was not read: the rest of the
// body is not checked, and a second "model" there (which no encoder
// writes) goes unnoticed.
//
// A body that ends as one located before did, from its model's key on, has
// its model from the tails kept (see lookupTail), read no further.
func locateModel(b []byte) (model string, ok, decided bool) {
	return locate(b, true)
}

// locate is locateModel, with the tails kept (read and kept) or not.
func locate(b []byte, kept bool) (model string, ok, decided bool) {
	open := skipSpace(b, 0)
	if open >= len(b) || b[open] != '{' {
		return "", false, true
	}
	first := skipSpace(b, open+1)
	if first < len(b) && b[first] == '}' {
		return "", false, skipSpace(b, first+1) == len(b)
	}
	// The first member, forward.
	if first >= len(b) || b[first] != '"' {
		return "", false, true
	}
	keyEnd := scanString(b, first)
	if keyEnd < 0 {
		return "", false, true
	}
	colon := skipSpace(b, keyEnd)
	if colon >= len(b) || b[colon] != ':' {
		return "", false, true
	}
	if isModelKey(b[first:keyEnd]) {
		v := skipSpace(b, colon+1)
		if v >= len(b) || b[v] != '"' {
			return "", false, true // a model that is not a string
		}
		e := scanString(b, v)
		if e < 0 {
			return "", false, true
		}
		m, ok := decodeModel(b[v:e])
		return m, ok, true
	}

	// A body that ends as one read before did has its model there.
	if kept {
		if m, ok := lookupTail(b, first); ok {
			return m, true, true
		}
	}
	// The members from the end, backward, as far as the budget goes.
	lo := max(len(b)-locateBudget, first)
	j := skipSpaceBack(b, len(b)-1)
	if j < 0 || b[j] != '}' {
		return "", false, true
	}
	whole := false
	for j = skipSpaceBack(b, j-1); ; {
		// A value ends at j: find where it starts.
		if j < lo {
			break
		}
		var vStart int
		str := false
		switch c := b[j]; {
		case c == '"':
			vStart, str = openingQuote(b, j, lo), true
		case c == '}' || c == ']':
			vStart = skipNestedBack(b, j, lo)
		case isNumberByte(c) || c >= 'a' && c <= 'z':
			vStart = j
			for vStart > lo && (isNumberByte(b[vStart-1]) || b[vStart-1] >= 'a' && b[vStart-1] <= 'z') {
				vStart--
			}
		default:
			return "", false, true
		}
		if vStart == beyond {
			break
		}
		if vStart < 0 {
			return "", false, true
		}
		k := skipSpaceBack(b, vStart-1)
		if k < lo {
			break
		}
		if b[k] != ':' {
			return "", false, true
		}
		if k = skipSpaceBack(b, k-1); k < lo {
			break
		}
		if b[k] != '"' {
			return "", false, true
		}
		kStart := openingQuote(b, k, lo)
		if kStart == beyond {
			break
		}
		if kStart < 0 {
			return "", false, true
		}
		if kStart == first { // back at the first member, read already
			whole = true
			break
		}
		if isModelKey(b[kStart : k+1]) {
			if !str {
				return "", false, true
			}
			m, ok := decodeModel(b[vStart : j+1])
			if ok && kept {
				keepTail(b, kStart, m)
			}
			return m, ok, true
		}
		if j = skipSpaceBack(b, kStart-1); j < lo {
			break
		}
		if b[j] != ',' {
			return "", false, true
		}
		j = skipSpaceBack(b, j-1)
	}
	return "", false, whole
}

// lowSeven is the low seven bits of every byte of a word.
const lowSeven = 0x7f7f7f7f7f7f7f7f

// beyond is what the backward steps return when the start of what they
// look for lies before the budget's bound.
const beyond = -2

// skipSpaceBack returns the index of the last byte at or before i that is
// not whitespace, or -1.
func skipSpaceBack(b []byte, i int) int {
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	return i
}

// openingQuote returns the index of the quote that opens the string whose
// closing quote is b[j]: the last quote before j not escaped by an odd run
// of backslashes (a string holds no other). It returns beyond when that
// quote is before lo, and -1 when lo is 0 and there is none.
func openingQuote(b []byte, j, lo int) int {
	for {
		k := lastQuote(b, lo, j)
		if k < 0 {
			if lo == 0 {
				return -1
			}
			return beyond
		}
		n := 0
		for k-n-1 >= 0 && b[k-n-1] == '\\' {
			n++
		}
		if n%2 == 0 {
			return k
		}
		j = k
	}
}

// lastQuote returns the index of the last quote in b[lo:j], or -1. It
// looks at eight bytes at a time from the end, with a test for a quote
// byte that is exact in every byte (no borrow crosses from one to the
// next, as it does in scanString's, which is exact for the first match
// only): the highest byte it marks is the last quote.
func lastQuote(b []byte, lo, j int) int {
	for j-8 >= lo {
		x := word(b, j-8) ^ quotes
		if m := ^((x&lowSeven + lowSeven) | x | lowSeven); m != 0 {
			return j - 8 + (63-bits.LeadingZeros64(m))>>3
		}
		j -= 8
	}
	for j > lo {
		j--
		if b[j] == '"' {
			return j
		}
	}
	return -1
}

// skipNestedBack returns the index of the bracket that opens the object or
// array closed at b[j]; -1 when the brackets do not match, or beyond when
// it lies before lo.
func skipNestedBack(b []byte, j, lo int) int {
	var open [maxNesting / 64]uint64 // bit set: that level is an array
	depth := 0
	for i := j; i >= lo; i-- {
		c := b[i]
		if !structural[c] {
			continue
		}
		switch c {
		case '}', ']':
			if depth == maxNesting {
				return -1
			}
			w, bit := depth/64, uint64(1)<<(depth%64)
			if c == ']' {
				open[w] |= bit
			} else {
				open[w] &^= bit
			}
			depth++
		case '{', '[':
			depth--
			isArray := open[depth/64]&(uint64(1)<<(depth%64)) != 0
			if isArray != (c == '[') {
				return -1
			}
			if depth == 0 {
				return i
			}
		case '"':
			k := openingQuote(b, i, lo)
			if k < 0 {
				return k
			}
			i = k
		}
	}
	if lo == 0 {
		return -1
	}
	return beyond
}
