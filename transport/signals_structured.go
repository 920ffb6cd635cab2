package transport

// A reader of HTTP structured field values (RFC 9651, which RFC 8941
// began), the syntax of the IETF RateLimit fields. It reads a value in
// place and never allocates: what it returns are slices of the value and
// numbers. It knows the whole syntax, so that a value that breaks it is
// refused as a whole (RFC 9651 §4.2 and the RateLimit drafts ask for that)
// rather than read in part, but it keeps only the kinds of bare items the
// RateLimit fields use: numbers, strings and tokens.

// sfKind is the kind of a bare item, or of an inner list.
type sfKind int8

const (
	sfInvalid   sfKind = iota // a syntax error
	sfNumber                  // an Integer or a Decimal
	sfString                  // a String: str is its content, escapes left in place
	sfToken                   // a Token
	sfOther                   // a Byte Sequence, Boolean, Date or Display String
	sfInnerList               // an Inner List (list members only)
)

// sfItem is a bare item: its kind, and its value where the kind has one
// the RateLimit fields use.
type sfItem struct {
	kind sfKind
	num  float64 // sfNumber
	str  string  // sfString, sfToken
}

// nonNegative is the item's value when it is a number of zero or more, and
// -1 otherwise: the RateLimit fields count and time only forwards.
func (it sfItem) nonNegative() float64 {
	if it.kind == sfNumber && it.num >= 0 {
		return it.num
	}
	return -1
}

// text is the item's value when it is a String or a Token, which the
// RateLimit fields use alike for names and units.
func (it sfItem) text() (string, bool) {
	return it.str, it.kind == sfString || it.kind == sfToken
}

// sfScanner walks one field line.
type sfScanner struct {
	s string
	i int
}

func (p *sfScanner) done() bool { return p.i >= len(p.s) }

func (p *sfScanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// skipSP skips the spaces RFC 9651 allows after a parameter's semicolon
// and between the items of an Inner List.
func (p *sfScanner) skipSP() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// skipOWS skips the optional whitespace HTTP allows around the commas of a
// List or Dictionary.
func (p *sfScanner) skipOWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// nextMember moves past the separator between two members of a List or
// Dictionary. more is false at the end of the value; ok is false when what
// follows a member is not a separator, or a separator ends the value.
func (p *sfScanner) nextMember() (more, ok bool) {
	p.skipOWS()
	if p.done() {
		return false, true
	}
	if p.s[p.i] != ',' {
		return false, false
	}
	p.i++
	p.skipOWS()
	return !p.done(), !p.done()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isLCAlpha(c byte) bool {
	return 'a' <= c && c <= 'z'
}

// isTokenChar reports whether c may follow the first character of a Token:
// an HTTP tchar, ':' or '/'.
func isTokenChar(c byte) bool {
	if isDigit(c) || isAlpha(c) {
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~', ':', '/':
		return true
	}
	return false
}

// key reads a parameter or dictionary key: a lowercase letter or '*', then
// lowercase letters, digits, '_', '-', '.' and '*'.
func (p *sfScanner) key() (string, bool) {
	start := p.i
	if c := p.peek(); !isLCAlpha(c) && c != '*' {
		return "", false
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !isLCAlpha(c) && !isDigit(c) && c != '_' && c != '-' && c != '.' && c != '*' {
			break
		}
		p.i++
	}
	return p.s[start:p.i], true
}

// bareItem reads one bare item; its kind is sfInvalid on a syntax error.
func (p *sfScanner) bareItem() sfItem {
	switch c := p.peek(); {
	case c == '-' || isDigit(c):
		f, _, ok := p.number()
		if !ok {
			return sfItem{}
		}
		return sfItem{kind: sfNumber, num: f}
	case c == '"':
		return p.quoted()
	case c == '*' || isAlpha(c):
		start := p.i
		p.i++
		for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
			p.i++
		}
		return sfItem{kind: sfToken, str: p.s[start:p.i]}
	case c == ':':
		return p.byteSequence()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			p.i += 2
			return sfItem{kind: sfOther}
		}
	case c == '@':
		p.i++
		if _, decimal, ok := p.number(); ok && !decimal {
			return sfItem{kind: sfOther}
		}
	case c == '%':
		return p.displayString()
	}
	return sfItem{}
}

// number reads an Integer (at most 15 digits) or a Decimal (at most 12
// digits before the point and 3 after it). Both are exact in a float64.
func (p *sfScanner) number() (f float64, decimal, ok bool) {
	neg := false
	if p.peek() == '-' {
		neg = true
		p.i++
	}
	if !isDigit(p.peek()) {
		return 0, false, false
	}
	var whole, frac int64
	digits, fracDigits := 0, 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case isDigit(c) && !decimal:
			if digits == 15 {
				return 0, false, false
			}
			whole = whole*10 + int64(c-'0')
			digits++
		case isDigit(c):
			if fracDigits == 3 {
				return 0, false, false
			}
			frac = frac*10 + int64(c-'0')
			fracDigits++
		case c == '.' && !decimal:
			if digits > 12 {
				return 0, false, false
			}
			decimal = true
		default:
			goto end
		}
		p.i++
	}
end:
	if decimal && fracDigits == 0 {
		return 0, false, false
	}
	f = float64(whole)
	if fracDigits > 0 {
		f += float64(frac) / [...]float64{1, 10, 100, 1000}[fracDigits]
	}
	if neg {
		f = -f
	}
	return f, decimal, true
}

// quoted reads a String: printable ASCII between double quotes, in which
// only '"' and '\' are escaped. Its content keeps the escapes: as every
// '"' and '\' inside must be escaped, two strings are equal exactly when
// their escaped contents are.
func (p *sfScanner) quoted() sfItem {
	p.i++ // the opening quote
	start := p.i
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '\\':
			if p.i+1 >= len(p.s) || (p.s[p.i+1] != '"' && p.s[p.i+1] != '\\') {
				return sfItem{}
			}
			p.i += 2
		case c == '"':
			p.i++
			return sfItem{kind: sfString, str: p.s[start : p.i-1]}
		case c < 0x20 || c > 0x7e:
			return sfItem{}
		default:
			p.i++
		}
	}
	return sfItem{} // no closing quote
}

// byteSequence reads base64 between colons.
func (p *sfScanner) byteSequence() sfItem {
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == ':':
			return sfItem{kind: sfOther}
		case isAlpha(c) || isDigit(c) || c == '+' || c == '/' || c == '=':
		default:
			return sfItem{}
		}
	}
	return sfItem{}
}

// displayString reads %"...", in which non-ASCII bytes are written as
// %xx in lowercase hex (RFC 9651 §4.2.10).
func (p *sfScanner) displayString() sfItem {
	if p.i+1 >= len(p.s) || p.s[p.i+1] != '"' {
		return sfItem{}
	}
	p.i += 2
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return sfItem{kind: sfOther}
		case c == '%':
			if p.i+2 >= len(p.s) || !isLowerHex(p.s[p.i+1]) || !isLowerHex(p.s[p.i+2]) {
				return sfItem{}
			}
			p.i += 3
		case c < 0x20 || c > 0x7e:
			return sfItem{}
		default:
			p.i++
		}
	}
	return sfItem{}
}

func isLowerHex(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') }

// rateParams are the parameters of a RateLimit or RateLimit-Policy item
// that steady reads; the others are checked and skipped. A key given twice
// keeps its last value, as RFC 9651 says.
type rateParams struct {
	q, qu, w, r, t sfItem
}

// params reads the parameters that follow an item: ";" key ["=" value],
// with spaces allowed after the semicolon only. ok is false on a syntax
// error.
func (p *sfScanner) params(into *rateParams) bool {
	for p.peek() == ';' {
		p.i++
		p.skipSP()
		k, ok := p.key()
		if !ok {
			return false
		}
		v := sfItem{kind: sfOther} // a key alone is Boolean true
		if p.peek() == '=' {
			p.i++
			if v = p.bareItem(); v.kind == sfInvalid {
				return false
			}
		}
		switch k {
		case "q":
			into.q = v
		case "qu":
			into.qu = v
		case "w":
			into.w = v
		case "r":
			into.r = v
		case "t":
			into.t = v
		}
	}
	return true
}

// innerList reads "(" items separated by spaces ")": valid syntax, but
// nothing the RateLimit fields use.
func (p *sfScanner) innerList() bool {
	p.i++
	for {
		p.skipSP()
		if p.peek() == ')' {
			p.i++
			return true
		}
		if p.bareItem().kind == sfInvalid {
			return false
		}
		var ignored rateParams
		if !p.params(&ignored) {
			return false
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return false
		}
	}
}

// member reads one List member: an Item or an Inner List, then its
// parameters. The kind of the returned item is sfInvalid on a syntax
// error.
func (p *sfScanner) member(into *rateParams) sfItem {
	it := sfItem{kind: sfInnerList}
	if p.peek() == '(' {
		if !p.innerList() {
			return sfItem{}
		}
	} else if it = p.bareItem(); it.kind == sfInvalid {
		return it
	}
	if !p.params(into) {
		return sfItem{}
	}
	return it
}

// sfList walks the members of a List field given as one or more field
// lines: the lines of a List field are members of one List (RFC 9110
// §5.3), so each line is read as a List of its own and their members
// follow one another.
type sfList struct {
	lines []string
	line  int
	sc    sfScanner
	open  bool // sc is inside a line, between members
	bad   bool // a syntax error ended the walk
}

// next returns the next member and its parameters. ok is false at the end
// of the field or on a syntax error (then l.bad is set).
func (l *sfList) next(prm *rateParams) (sfItem, bool) {
	for !l.open {
		if l.line >= len(l.lines) {
			return sfItem{}, false
		}
		l.sc = sfScanner{s: l.lines[l.line]}
		l.line++
		l.sc.skipOWS()        // a received line is trimmed already; a Set one may not be
		l.open = !l.sc.done() // an empty line is an empty List
	}
	*prm = rateParams{}
	it := l.sc.member(prm)
	if it.kind == sfInvalid {
		l.bad, l.open = true, false
		l.line = len(l.lines)
		return it, false
	}
	more, ok := l.sc.nextMember()
	if !ok {
		l.bad, l.open = true, false
		l.line = len(l.lines)
		return sfItem{}, false
	}
	l.open = more
	return it, true
}

// oneLine walks a List given as a single string, which need not be held
// in a slice (that would cost an allocation).
func oneLine(s string) sfList {
	l := sfList{sc: sfScanner{s: s}}
	l.sc.skipOWS()
	l.open = !l.sc.done()
	return l
}

// valid reports whether every member of the List is well formed, walking a
// copy of l. Malformed RateLimit fields are ignored as a whole, so a field
// is checked to its end before any member of it is used.
func (l sfList) valid() bool {
	var prm rateParams
	for {
		if _, ok := l.next(&prm); !ok {
			return !l.bad
		}
	}
}

// rateDict are the members of a draft 7 RateLimit Dictionary that steady
// reads.
type rateDict struct {
	limit, remaining, reset sfItem
}

// parseRateDict reads one line of a draft 7 RateLimit field, a Dictionary
// ("limit=100, remaining=99, reset=10"). A key given twice keeps its last
// value. ok is false on a syntax error.
func parseRateDict(line string) (d rateDict, ok bool) {
	p := sfScanner{s: line}
	p.skipOWS()
	for !p.done() {
		k, ok := p.key()
		if !ok {
			return d, false
		}
		v := sfItem{kind: sfOther} // a key alone is Boolean true
		if p.peek() == '=' {
			p.i++
			if p.peek() == '(' {
				if !p.innerList() {
					return d, false
				}
				v = sfItem{kind: sfInnerList}
			} else if v = p.bareItem(); v.kind == sfInvalid {
				return d, false
			}
		}
		var ignored rateParams
		if !p.params(&ignored) {
			return d, false
		}
		switch k {
		case "limit":
			d.limit = v
		case "remaining":
			d.remaining = v
		case "reset":
			d.reset = v
		}
		more, ok := p.nextMember()
		if !ok {
			return d, false
		}
		if !more {
			break
		}
	}
	return d, true
}
