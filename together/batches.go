package together

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/steadyapi/steady/transport"
)

// MaxBatchRequests is the most requests Together accepts in one batch.
const MaxBatchRequests = 100

// BatchTooLargeError is returned, before anything is sent, for a batch of
// more than [MaxBatchRequests] requests: the requests of a JSON body's
// "requests" array, or the lines of its "input" (JSONL), as
// encoding/json reads them. The body is counted through its GetBody (as
// [http.NewRequest] sets for bytes, strings and buffers), read to its end
// in pieces that are not kept, whatever its size. A body without GetBody
// is buffered, up to 32 MiB, and counted from the buffer; a larger one is
// sent as it is, uncounted, for the server to judge.
type BatchTooLargeError struct {
	Requests int // the requests of the batch refused
}

// Error says how many requests the batch has and how many fit.
func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("together: a batch holds at most %d requests; this one has %d: split it", MaxBatchRequests, e.Requests)
}

// batchGuard refuses a batch over MaxBatchRequests before it is sent. It
// counts the requests of a JSON body's "requests" array, or the lines of
// its "input" (JSONL), reading a copy of the body (GetBody) to its end
// without keeping it; any other body is passed on for the server to
// judge. A body without GetBody is buffered up to
// transport.DefaultReplayLimit and counted from the buffer; a larger one
// is sent on once, uncounted.
func batchGuard(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody {
			return next.RoundTrip(req)
		}
		var r transport.Replay
		if err := r.Reset(req, 0); err != nil {
			return nil, err
		}
		send, err := r.Request()
		if err != nil {
			return nil, err
		}
		if n := countBatch(send); n > MaxBatchRequests {
			if send.Body != nil {
				send.Body.Close()
			}
			return nil, &BatchTooLargeError{Requests: n}
		}
		// countBatch read a copy (GetBody): send's body is whole.
		return next.RoundTrip(send)
	})
}

// countBatch is the count of requests of req's body, read through its
// GetBody: 0 for a body without GetBody, one GetBody cannot give, or one
// encoding/json would not decode into
//
//	struct {
//		Requests []json.RawMessage `json:"requests"`
//		Input    string            `json:"input"`
//	}
//
// (not JSON, cut short, a "requests" that is no array, an "input" that is
// no text). It is len(Requests) when Requests is not nil, and otherwise
// the lines of Input that are not blank. The body is read to the end of
// its JSON value, a piece at a time: the memory it takes does not grow
// with the body's size.
func countBatch(req *http.Request) int {
	if req.GetBody == nil {
		return 0
	}
	rc, err := req.GetBody()
	if err != nil || rc == nil {
		return 0
	}
	defer rc.Close()
	n, err := scanBatch(bufio.NewReaderSize(rc, 32<<10))
	if err != nil {
		return 0
	}
	return n
}

// errBatchSyntax is a batch body that is not JSON.
var errBatchSyntax = errors.New("together: batch body is not JSON")

// maxBatchDepth is the deepest nesting of arrays and objects that
// encoding/json reads: a body nested deeper is not JSON to it.
const maxBatchDepth = 10000

// batchScanner reads one JSON value from a stream, checking its syntax as
// encoding/json does, and keeps nothing of it but the counts of a batch.
type batchScanner struct {
	r     *bufio.Reader
	depth int // the arrays and objects open
}

// scanBatch reads a batch body from r: see countBatch. A body that is not
// JSON is an error; a JSON body that is not a batch counts 0.
func scanBatch(r *bufio.Reader) (int, error) {
	s := batchScanner{r: r}
	c, err := s.space()
	if err != nil {
		return 0, err
	}
	if c != '{' {
		return 0, nil // null, or no object: nothing to count
	}
	s.depth = 1
	var (
		requests = -1 // the last "requests" array's length; -1 for none, or null
		lines    int  // the last "input"'s lines that are not blank
		mistyped bool // a "requests" or an "input" of another type
	)
	if c, err = s.space(); err != nil {
		return 0, err
	}
	if c == '}' {
		return 0, nil
	}
	for {
		if c != '"' {
			return 0, errBatchSyntax
		}
		key, err := s.key()
		if err != nil {
			return 0, err
		}
		if c, err = s.space(); err != nil {
			return 0, err
		}
		if c != ':' {
			return 0, errBatchSyntax
		}
		if c, err = s.space(); err != nil {
			return 0, err
		}
		switch {
		case key == "REQUESTS" && c == '[':
			requests, err = s.array()
		case key == "REQUESTS" && c == 'n':
			requests, err = -1, s.literal("ull") // null empties a slice
		case key == "INPUT" && c == '"':
			lines, err = s.lines()
		case key == "INPUT" && c == 'n':
			err = s.literal("ull") // null leaves a string as it was
		default:
			mistyped = mistyped || key == "REQUESTS" || key == "INPUT"
			err = s.value(c)
		}
		if err != nil {
			return 0, err
		}
		if c, err = s.space(); err != nil {
			return 0, err
		}
		switch c {
		case ',':
			if c, err = s.space(); err != nil {
				return 0, err
			}
		case '}':
			switch {
			case mistyped:
				return 0, nil
			case requests >= 0:
				return requests, nil
			}
			return lines, nil
		default:
			return 0, errBatchSyntax
		}
	}
}

// next reads a byte; the end of the body is an unexpected one.
func (s *batchScanner) next() (byte, error) {
	c, err := s.r.ReadByte()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return c, err
}

// space reads the first byte that is not JSON's white space.
func (s *batchScanner) space() (byte, error) {
	for {
		c, err := s.next()
		if err != nil || c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			return c, err
		}
	}
}

// value reads a value whose first byte, c, is read.
func (s *batchScanner) value(c byte) error {
	switch {
	case c == '{':
		return s.object()
	case c == '[':
		_, err := s.array()
		return err
	case c == '"':
		return s.str(nil)
	case c == 't':
		return s.literal("rue")
	case c == 'f':
		return s.literal("alse")
	case c == 'n':
		return s.literal("ull")
	case c == '-' || '0' <= c && c <= '9':
		return s.number(c)
	}
	return errBatchSyntax
}

// open counts an array or object opened, refusing one nested deeper than
// maxBatchDepth.
func (s *batchScanner) open() error {
	s.depth++
	if s.depth > maxBatchDepth {
		return errBatchSyntax
	}
	return nil
}

// array reads an array, its '[' read, and returns its length.
func (s *batchScanner) array() (int, error) {
	if err := s.open(); err != nil {
		return 0, err
	}
	c, err := s.space()
	if err != nil {
		return 0, err
	}
	n := 0
	if c == ']' {
		s.depth--
		return n, nil
	}
	for {
		if err := s.value(c); err != nil {
			return 0, err
		}
		n++
		if c, err = s.space(); err != nil {
			return 0, err
		}
		switch c {
		case ',':
			if c, err = s.space(); err != nil {
				return 0, err
			}
		case ']':
			s.depth--
			return n, nil
		default:
			return 0, errBatchSyntax
		}
	}
}

// object reads an object, its '{' read.
func (s *batchScanner) object() error {
	if err := s.open(); err != nil {
		return err
	}
	c, err := s.space()
	if err != nil {
		return err
	}
	if c == '}' {
		s.depth--
		return nil
	}
	for {
		if c != '"' {
			return errBatchSyntax
		}
		if err := s.str(nil); err != nil {
			return err
		}
		if c, err = s.space(); err != nil {
			return err
		}
		if c != ':' {
			return errBatchSyntax
		}
		if c, err = s.space(); err != nil {
			return err
		}
		if err := s.value(c); err != nil {
			return err
		}
		if c, err = s.space(); err != nil {
			return err
		}
		switch c {
		case ',':
			if c, err = s.space(); err != nil {
				return err
			}
		case '}':
			s.depth--
			return nil
		default:
			return errBatchSyntax
		}
	}
}

// literal reads the rest of true, false or null.
func (s *batchScanner) literal(rest string) error {
	for i := range len(rest) {
		c, err := s.next()
		if err != nil {
			return err
		}
		if c != rest[i] {
			return errBatchSyntax
		}
	}
	return nil
}

// number reads a number whose first byte, c, is read, and leaves the byte
// after it unread.
func (s *batchScanner) number(c byte) error {
	var err error
	if c == '-' {
		if c, err = s.next(); err != nil {
			return err
		}
	}
	switch {
	case c == '0':
		c, err = s.next()
	case '1' <= c && c <= '9':
		c, err = s.digits()
	default:
		return errBatchSyntax
	}
	if err != nil {
		return err
	}
	if c == '.' {
		if c, err = s.next(); err != nil {
			return err
		}
		if c < '0' || c > '9' {
			return errBatchSyntax
		}
		if c, err = s.digits(); err != nil {
			return err
		}
	}
	if c == 'e' || c == 'E' {
		if c, err = s.next(); err != nil {
			return err
		}
		if c == '+' || c == '-' {
			if c, err = s.next(); err != nil {
				return err
			}
		}
		if c < '0' || c > '9' {
			return errBatchSyntax
		}
		if _, err = s.digits(); err != nil {
			return err
		}
	}
	return s.r.UnreadByte()
}

// digits reads digits and returns the byte after them.
func (s *batchScanner) digits() (byte, error) {
	for {
		c, err := s.next()
		if err != nil || c < '0' || c > '9' {
			return c, err
		}
	}
}

// str reads a string, its opening quote read, handing each character to
// visit as encoding/json decodes it (invalid UTF-8 and a surrogate as
// U+FFFD). A nil visit is handed nothing: the string is only checked.
func (s *batchScanner) str(visit func(rune)) error {
	for {
		c, err := s.next()
		if err != nil {
			return err
		}
		var r rune
		switch {
		case c == '"':
			return nil
		case c < 0x20:
			return errBatchSyntax
		case c == '\\':
			if r, err = s.escape(); err != nil {
				return err
			}
		case c < utf8.RuneSelf || visit == nil:
			r = rune(c)
		default:
			_ = s.r.UnreadByte()
			r, _, _ = s.r.ReadRune() // the byte is buffered: no error
		}
		if visit != nil {
			visit(r)
		}
	}
}

// escape reads an escape of a string, its backslash read, and returns
// the character it writes. A surrogate, alone or in a pair, is U+FFFD:
// no character a batch is counted by is one.
func (s *batchScanner) escape() (rune, error) {
	c, err := s.next()
	if err != nil {
		return 0, err
	}
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		var r rune
		for range 4 {
			if c, err = s.next(); err != nil {
				return 0, err
			}
			switch {
			case '0' <= c && c <= '9':
				r = r<<4 | rune(c-'0')
			case 'a' <= c && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case 'A' <= c && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, errBatchSyntax
			}
		}
		if utf16.IsSurrogate(r) {
			r = utf8.RuneError
		}
		return r, nil
	}
	return 0, errBatchSyntax
}

// key reads an object's key, its opening quote read, and returns it
// folded as encoding/json folds a key to match a field's name without
// regard to case ("" for one longer than either name the batch is read
// by).
func (s *batchScanner) key() (string, error) {
	var folded []byte
	long := false
	err := s.str(func(r rune) {
		if long {
			return
		}
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
		} else {
			r = foldRune(r)
		}
		folded = utf8.AppendRune(folded, r)
		long = len(folded) > len("REQUESTS")
	})
	if long {
		return "", err
	}
	return string(folded), err
}

// foldRune is the least rune of r's case-folding orbit, as encoding/json
// folds a key's non-ASCII characters (ſ is S, the Kelvin sign K).
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// lines reads a string, its opening quote read, and returns how many of
// its lines are not blank (white space only).
func (s *batchScanner) lines() (int, error) {
	n, blank := 0, true
	err := s.str(func(r rune) {
		switch {
		case r == '\n':
			if !blank {
				n++
			}
			blank = true
		case blank && !unicode.IsSpace(r):
			blank = false
		}
	})
	if !blank {
		n++
	}
	return n, err
}
