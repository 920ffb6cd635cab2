package transport

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
)

// Usage is what an answer says its request used, from the "usage" object
// providers put in their answers: in the body of a whole answer, in the
// last event of a stream (OpenAI with stream_options.include_usage,
// Together), or split over a stream's events (Anthropic: the input in
// message_start, the output, counted so far, in each message_delta).
type Usage struct {
	// Input is the tokens of the prompt: prompt_tokens (OpenAI, Together)
	// or input_tokens (Anthropic, OpenAI's Responses API), with Anthropic's
	// cache_creation_input_tokens and cache_read_input_tokens added.
	Input int64
	// Output is the tokens generated: completion_tokens or output_tokens.
	Output int64
}

// Total is Input plus Output, at most math.MaxInt64.
func (u Usage) Total() int64 { return addCounts(u.Input, u.Output) }

// addCounts adds two counts, at most math.MaxInt64: an answer may report
// counts that are each valid but whose sum does not fit, and wrapping
// around would make it a negative usage.
func addCounts(a, b int64) int64 {
	s := a + b
	if a > 0 && b > 0 && s < 0 {
		return math.MaxInt64
	}
	return s
}

// maxUsageObject bounds the usage object kept: OpenAI's, with its details,
// is a few hundred bytes.
const maxUsageObject = 2 << 10

// WatchUsage returns a body that reads body and, as the caller reads it,
// finds the usage the answer reports. done is called once, when the caller
// reads to the end of the body or closes it, with the usage found, and ok
// false when none was. The body is never read by anyone but the caller: a
// caller that reads half of it gets the usage of what it read (Anthropic's
// streams report the output so far), and one that never reads it gets
// done(Usage{}, false) when it closes it.
//
// Each "usage" object of the body is read for its own members: where one
// names a field another named before, the later is kept, so the last event
// of a stream wins. A "usage" that is not an object (OpenAI's "usage":
// null on every event but the last) is passed over.
//
// body is read as it comes: [WatchResponseUsage] reads an answer's body
// as its Content-Encoding says (one net/http left gzip-compressed).
func WatchUsage(body io.ReadCloser, done func(u Usage, ok bool)) io.ReadCloser {
	return &usageWatcher{rc: body, done: done}
}

// WatchResponseUsage is [WatchUsage] of resp's body, read as its
// Content-Encoding says. An answer net/http left gzip-compressed (as it
// does when the request asked for gzip itself, with its own
// Accept-Encoding) is handed to the caller as it came, and uncompressed
// only to find its usage: the compressed bytes the caller reads are kept,
// up to 4 MiB (a larger answer reports no usage), and read when done is
// called. An answer in any other encoding reports no usage.
func WatchResponseUsage(resp *http.Response, done func(u Usage, ok bool)) io.ReadCloser {
	w := &usageWatcher{rc: resp.Body, done: done}
	if ce := resp.Header["Content-Encoding"]; len(ce) > 0 {
		switch v := strings.TrimSpace(ce[0]); {
		case strings.EqualFold(v, "gzip"), strings.EqualFold(v, "x-gzip"):
			w.zipped = new(zippedBody)
		case v != "" && !strings.EqualFold(v, "identity"):
			w.zipped = &zippedBody{over: true} // no usage is read of it
		}
	}
	return w
}

// zippedBody is what a usageWatcher keeps of a gzip-compressed body.
type zippedBody struct {
	b    []byte
	over bool // larger than maxZippedUsage, or in an encoding not read
}

const (
	// maxZippedUsage bounds the compressed bytes kept to find the usage.
	maxZippedUsage = 4 << 20
	// maxUnzippedUsage bounds the bytes they are uncompressed to: a small
	// body may uncompress to gigabytes.
	maxUnzippedUsage = 64 << 20
)

// keep keeps p, read of the compressed body.
func (z *zippedBody) keep(p []byte) {
	if z.over {
		return
	}
	if len(z.b)+len(p) > maxZippedUsage {
		z.over, z.b = true, nil
		return
	}
	z.b = append(z.b, p...)
}

// feed uncompresses what was kept, as far as it goes, into w.
func (z *zippedBody) feed(w *usageWatcher) {
	if z.over || len(z.b) == 0 {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(z.b))
	if err != nil {
		return
	}
	buf := make([]byte, 32<<10)
	r := io.LimitReader(zr, maxUnzippedUsage)
	for {
		n, err := r.Read(buf)
		w.feed(buf[:n])
		if err != nil {
			break
		}
	}
	z.b = nil
}

type usageWatcher struct {
	rc   io.ReadCloser
	done func(Usage, bool)

	mu   sync.Mutex
	tail [len(usageKey) - 1]byte // the end of the last read: a key cut in two
	nt   int
	// tailEsc says whether the bytes before the tail end in a backslash
	// that escapes its first byte: a quote so escaped opens no key. It is
	// set anew whenever the tail is emptied, never kept from an older one.
	tailEsc bool
	st      uint8 // usageLook, usageColon, usageOpen, usageTake
	obj     []byte
	deep    int
	str     bool // inside a string of the object
	esc     bool
	u       Usage
	seen    bool // any usage object found
	// The parts of the input, each replaced by a later object that names
	// it.
	inN, cacheInN, cacheReadN int64
	over                      bool // done was called
	// zipped is what is kept of a compressed body, which is read when
	// done is called; nil for a body read as it comes.
	zipped *zippedBody
}

const usageKey = `"usage"`

const (
	usageLook  uint8 = iota // looking for "usage"
	usageColon              // found it: whitespace, then ':'
	usageOpen               // whitespace, then '{' (anything else: not an object)
	usageTake               // inside the object: kept
)

func (w *usageWatcher) Read(p []byte) (int, error) {
	n, err := w.rc.Read(p)
	w.mu.Lock()
	if !w.over {
		if w.zipped != nil {
			w.zipped.keep(p[:n])
		} else {
			w.feed(p[:n])
		}
		if err == io.EOF {
			w.finish()
		}
	}
	w.mu.Unlock()
	return n, err
}

func (w *usageWatcher) Close() error {
	w.mu.Lock()
	if !w.over {
		w.finish()
	}
	w.mu.Unlock()
	return w.rc.Close()
}

// finish calls done; w.mu is held.
func (w *usageWatcher) finish() {
	w.over = true
	if w.zipped != nil {
		w.zipped.feed(w)
	}
	u := w.u
	u.Input = addCounts(addCounts(w.inN, w.cacheInN), w.cacheReadN)
	w.done(u, w.seen)
}

// feed looks at the bytes just read; w.mu is held.
func (w *usageWatcher) feed(p []byte) {
	for len(p) > 0 {
		switch w.st {
		case usageLook:
			p = w.look(p)
		case usageColon, usageOpen:
			c := p[0]
			p = p[1:]
			switch {
			case isSpace(c):
			case w.st == usageColon && c == ':':
				w.st = usageOpen
			case w.st == usageOpen && c == '{':
				w.st, w.obj, w.deep, w.str, w.esc = usageTake, append(w.obj[:0], c), 1, false, false
			default:
				// What follows is looked at as the start of a read: after
				// c, which escapes it if it is a backslash.
				w.st, w.tailEsc = usageLook, c == '\\'
			}
		case usageTake:
			p = w.take(p)
		}
	}
}

// look finds the next "usage" key in p, or cut between the last read and
// this one, and returns what follows it.
func (w *usageWatcher) look(p []byte) []byte {
	// Whether the bytes before p end in an escaping backslash: the tail's,
	// or with none, tailEsc (false at the start and after an object; after
	// a "usage" that was not an object's key, whether the byte that showed
	// it was a backslash).
	before := escapes(w.tail[:w.nt], w.tailEsc)
	if w.nt > 0 {
		// A key that starts in the tail of the last read.
		var joint [2*len(usageKey) - 2]byte
		n := copy(joint[:], w.tail[:w.nt])
		n += copy(joint[n:], p)
		if i := keyIndex(joint[:n], w.tailEsc); i >= 0 && i < w.nt {
			rest := p[i+len(usageKey)-w.nt:]
			w.nt, w.tailEsc, w.st = 0, false, usageColon
			return rest
		}
	}
	if i := keyIndex(p, before); i >= 0 {
		w.nt, w.tailEsc, w.st = 0, false, usageColon
		return p[i+len(usageKey):]
	}
	// Keep the last bytes seen, in case a key starts there.
	if len(p) >= len(w.tail) {
		w.tailEsc = escapes(p[:len(p)-len(w.tail)], before)
		w.nt = copy(w.tail[:], p[len(p)-len(w.tail):])
	} else {
		drop := max(0, w.nt+len(p)-len(w.tail))
		w.tailEsc = escapes(w.tail[:drop], w.tailEsc)
		copy(w.tail[:], w.tail[drop:w.nt])
		w.nt = w.nt - drop + copy(w.tail[w.nt-drop:], p)
	}
	return nil
}

// keyIndex is the index of the first "usage" in p whose opening quote is
// not escaped (a key that ends in \"usage is another key), or -1. escaped
// says whether the bytes before p end in an escaping backslash.
func keyIndex(p []byte, escaped bool) int {
	for off := 0; ; {
		i := bytes.Index(p[off:], []byte(usageKey))
		if i < 0 {
			return -1
		}
		i += off
		if !escapes(p[:i], escaped) {
			return i
		}
		off = i + 1
	}
}

// escapes reports whether p ends in a backslash that escapes the byte
// after it: an odd run of them. escaped says whether the bytes before p
// end in one.
func escapes(p []byte, escaped bool) bool {
	n := 0
	for n < len(p) && p[len(p)-1-n] == '\\' {
		n++
	}
	if n == len(p) {
		return escaped != (n%2 == 1)
	}
	return n%2 == 1
}

// take keeps the bytes of the usage object, and reads it when it closes.
func (w *usageWatcher) take(p []byte) []byte {
	for i, c := range p {
		if len(w.obj) < maxUsageObject {
			w.obj = append(w.obj, c)
		}
		switch {
		case w.esc:
			w.esc = false
		case w.str:
			switch c {
			case '\\':
				w.esc = true
			case '"':
				w.str = false
			}
		case c == '"':
			w.str = true
		case c == '{' || c == '[':
			w.deep++
		case c == '}' || c == ']':
			if w.deep--; w.deep == 0 {
				w.st, w.tailEsc = usageLook, false
				if len(w.obj) < maxUsageObject {
					w.read(w.obj)
				}
				return p[i+1:]
			}
		}
	}
	return nil
}

// read takes the counts of one usage object.
func (w *usageWatcher) read(obj []byte) {
	var u struct {
		Prompt     *int64 `json:"prompt_tokens"`
		Completion *int64 `json:"completion_tokens"`
		Input      *int64 `json:"input_tokens"`
		Output     *int64 `json:"output_tokens"`
		CacheIn    *int64 `json:"cache_creation_input_tokens"`
		CacheRead  *int64 `json:"cache_read_input_tokens"`
	}
	if json.Unmarshal(obj, &u) != nil {
		return
	}
	set := func(dst *int64, v *int64) bool {
		if v == nil || *v < 0 {
			return false
		}
		*dst = *v
		return true
	}
	found := set(&w.inN, u.Prompt)
	found = set(&w.inN, u.Input) || found
	found = set(&w.u.Output, u.Completion) || found
	found = set(&w.u.Output, u.Output) || found
	found = set(&w.cacheInN, u.CacheIn) || found
	found = set(&w.cacheReadN, u.CacheRead) || found
	w.seen = w.seen || found
}
