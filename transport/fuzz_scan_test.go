package transport

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// scanSeeds are bodies every scan test starts from.
var scanSeeds = []string{
	`{"model":"a","messages":[{"role":"user","content":"hi"}]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"héllo"},{"type":"image_url","image_url":{"url":"data:x"}}]}],"model":"m","max_tokens":16}`,
	`{"model":"claude","system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":"\u00e9\n\"q\""}],"max_tokens":1024}`,
	`{"model":"e","input":["one","two",["three"]],"max_completion_tokens":7,"max_output_tokens":9}`,
	`{"prompt":"say \\\"x\\\"","model":"c","max_tokens":1e30}`,
	`{"mod\u0065l":"m","cont\u0065nt":"x","x":{"model":"n"}}`,
	`{"messages":[{"role":"user","cont\u0065nt":"abc","t\u0065xt":"de"}],"model":"m"}`,
	`{"messages":[{"rôle":"user","contènt":"abc","conten":"x","texts":"y","Content":"z","content":"ok"}],"model":"m"}`,
	`{"input":[{"type":"function_call_output","output":"abc","outputs":"x"},{"outp\u0075t":"de"}],"instructions":"hi","model":"m"}`,
	`{"messages":[{"tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]},{"content":[{"type":"tool_use","input":{"k":"v","n":[1,"w"],"o":{"p":"q"}}},{"inp\u0075t":"s"}]}],"input":[{"arguments":{"x":"y"}},{"arguments":5}],"model":"m"}`,
	`{"messages":[{"input":"a"},{"x":"y"},{"input":5},{"x":"y"},["z"],{"input":["b",{"c":"d"}],"e":{"f":"g"}}],"model":"m"}`,
	`{"model":"a","model":"b"}`,
	`{"model":1}`,
	`[{"model":"a"}]`,
	` { "x" : [ [ { } ] ] , "model" : "" } `,
	`{"model":"a"`,
	`{"a":tru,"model":"m"}`,
	`{"a":[1},"model":"m"}`,
	`not json`,
	``,
}

// FuzzScan holds the streaming scanner to FindModel and to a reference
// reading of the same rules with encoding/json: whatever the body and
// however it is cut into pieces, it finds the model FindModel finds, at
// the same bytes, and on valid JSON it counts exactly the reference's
// prompt characters and max tokens. locateModel, which reads only the
// ends, agrees with FindModel on every valid body it decides.
func FuzzScan(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, body []byte, cut uint16) {
		model, ok := FindModel(body)
		start, end, spanOK := modelSpan(body)

		for _, pieces := range [][][]byte{
			{body},
			{body[:int(cut)%(len(body)+1)], body[int(cut)%(len(body)+1):]},
			bytePieces(body),
		} {
			s := getScanner(true)
			for _, p := range pieces {
				s.scan(p)
			}
			got, gotOK := s.foundModel()
			require.Equal(t, ok, gotOK, "found, for %q", body)
			require.Equal(t, model, got, "model, for %q", body)
			if ok && spanOK {
				require.Equal(t, int64(start), s.modelStart)
				require.Equal(t, int64(end), s.modelEnd)
			}
			if json.Valid(body) && utf8.Valid(body) && !bytes.Contains(bytes.ToLower(body), []byte(`\ud`)) {
				chars, maxTokens, isObject := referenceTokens(body)
				require.Equal(t, isObject, s.ok(), "a valid body is read as an object exactly when it is one: %q", body)
				if isObject {
					require.Equal(t, chars, s.chars, "prompt characters of %q", body)
					require.Equal(t, maxTokens, s.maxTokens, "max tokens of %q", body)
				}
			}
			putScanner(s)
		}

		if m, lok, decided := locateModel(body); decided && json.Valid(body) {
			if want, single := topLevelModelOf(body); single {
				require.True(t, lok, "locate finds the one model of %q", body)
				require.Equal(t, want, m)
			}
		}
	})
}

func bytePieces(b []byte) [][]byte {
	out := make([][]byte, len(b))
	for i := range b {
		out[i] = b[i : i+1]
	}
	return out
}

// topLevelModelOf is the model of a valid JSON object with exactly one
// top-level "model", a string.
func topLevelModelOf(body []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return "", false
	}
	var model string
	n := 0
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var v json.RawMessage
		if dec.Decode(&v) != nil {
			return "", false
		}
		if tok == "model" {
			n++
			if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &model) != nil {
				return "", false
			}
		}
	}
	return model, n == 1
}

// referenceTokens reads a valid JSON body by the estimate's rules with
// encoding/json: the characters of the strings of prompt text (a text
// member's value, the elements of arrays in it, the values of "content",
// "text" and "output" keys in it, and every string of the values of
// "arguments" and "input" keys in it, keys too), and the largest
// max-tokens value. Numbers over 32 bytes are not read as a limit, as the
// scanner does not.
func referenceTokens(body []byte) (chars int64, maxTokens float64, isObject bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, 0, false
	}
	var whole func() // a tool's input or arguments: every string in it
	whole = func() {
		tok, _ := dec.Token()
		switch v := tok.(type) {
		case string:
			chars += int64(utf8.RuneCountInString(v))
		case json.Delim:
			for dec.More() {
				if v == '{' {
					k, _ := dec.Token()
					chars += int64(utf8.RuneCountInString(k.(string)))
				}
				whole()
			}
			_, _ = dec.Token()
		}
	}
	var walk func(text, counted bool)
	walk = func(text, counted bool) {
		tok, _ := dec.Token()
		switch v := tok.(type) {
		case string:
			if counted {
				chars += int64(utf8.RuneCountInString(v))
			}
		case json.Delim:
			if v == '[' {
				for dec.More() {
					walk(text, text)
				}
			} else {
				for dec.More() {
					k, _ := dec.Token()
					if text && (k == "arguments" || k == "input") {
						whole()
						continue
					}
					walk(text, text && (k == "content" || k == "text" || k == "output"))
				}
			}
			_, _ = dec.Token()
		}
	}
	for dec.More() {
		tok, _ := dec.Token()
		switch k := tok.(string); k {
		case "messages", "prompt", "input", "system", "instructions":
			walk(true, true)
		case "max_tokens", "max_completion_tokens", "max_output_tokens":
			v, _ := dec.Token()
			if n, ok := v.(json.Number); ok && len(n) <= 32 {
				if f, err := n.Float64(); err == nil && f > 0 && !math.IsInf(f, 0) {
					maxTokens = max(maxTokens, min(math.Floor(f), math.MaxInt32))
				}
			}
		default:
			walk(false, false)
		}
	}
	return chars, maxTokens, true
}

func TestScanSeeds(t *testing.T) {
	tests := []struct {
		body      string
		chars     int64
		maxTokens float64
	}{
		{scanSeeds[0], 2, 0},
		{scanSeeds[1], 5, 16},    // "héllo"; the image URL and the types are not text
		{scanSeeds[2], 13, 1024}, // "be brief" and é, \n, "q" (in quotes)
		{scanSeeds[3], 11, 9},
		{scanSeeds[4], 9, math.MaxInt32},
		{scanSeeds[5], 0, 0},  // a top-level "content" is no prompt
		{scanSeeds[6], 5, 0},  // keys written with escapes are still "content" and "text"
		{scanSeeds[7], 2, 0},  // and no key but those (and "output")
		{scanSeeds[8], 7, 0},  // a tool's output handed back, and the instructions
		{scanSeeds[9], 17, 0}, // tool calls' arguments, a string or not, and tool_use's input, keys and all
		{scanSeeds[10], 5, 0}, // an input's value only: not what follows it
	}
	for _, tt := range tests {
		s := getScanner(true)
		s.scan([]byte(tt.body))
		assert.True(t, s.ok(), tt.body)
		assert.Equal(t, tt.chars, s.chars, tt.body)
		assert.Equal(t, tt.maxTokens, s.maxTokens, tt.body)
		putScanner(s)
	}
}

// A model too long to keep is no model, and costs no more than the limit.
func TestScanLongModel(t *testing.T) {
	body := `{"model":"` + strings.Repeat("m", maxModelBytes+10) + `"}`
	s := getScanner(false)
	defer putScanner(s)
	s.scan([]byte(body))
	_, ok := s.foundModel()
	assert.False(t, ok)
	assert.LessOrEqual(t, cap(s.model), 2*maxModelBytes)
}

// TestCountedEscapesAtEveryOffset counts prompts whose escapes (simple,
// \u with its four digits, \u with fewer, which JSON refuses) fall at every
// offset of the eight-byte loop, beside multi-byte characters and near the
// end of what is scanned, read whole and cut at every byte: the count is
// the reference's, one character an escape.
func TestCountedEscapesAtEveryOffset(t *testing.T) {
	escapes := []string{`\n`, `\"`, `\\`, `\u00e9`, `\uABCD`, `\/`}
	for pad := range 20 {
		for _, esc := range escapes {
			for _, tail := range []string{"", "x", "héllo wörld, the quick brown fox", `\t` + esc} {
				content := strings.Repeat("a", pad) + esc + "é" + esc + tail
				body := []byte(`{"messages":[{"role":"user","content":"` + content + `"}],"model":"m"}`)
				require.True(t, json.Valid(body), "%s", body)
				chars, _, _ := referenceTokens(body)
				for cut := range len(body) + 1 {
					s := getScanner(true)
					s.scan(body[:cut])
					s.scan(body[cut:])
					require.True(t, s.ok(), "%s cut at %d", body, cut)
					require.Equal(t, chars, s.chars, "%s cut at %d", body, cut)
					putScanner(s)
				}
			}
		}
	}
	// A \u without its four digits is counted as the escape states count
	// it, whole or in pieces: the backslash and u one character, the hex
	// digits after it with them.
	for _, content := range []string{`\u12`, `\u12xyz and more text here`, `abcdefgh\uZZZZ ijklmnop`} {
		body := []byte(`{"messages":[{"role":"user","content":"` + content + `"}]}`)
		whole := getScanner(true)
		whole.scan(body)
		for cut := range len(body) + 1 {
			s := getScanner(true)
			s.scan(body[:cut])
			s.scan(body[cut:])
			require.Equal(t, whole.chars, s.chars, "%s cut at %d", body, cut)
			putScanner(s)
		}
		putScanner(whole)
	}
}
