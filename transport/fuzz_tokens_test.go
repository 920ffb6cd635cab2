package transport_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/steadyapi/steady/transport"
)

// FuzzEstimateTokens feeds the token estimate any request body. It must
// not panic, must cost at least one token and never more than the body
// could ask for (its characters, over four, plus a number it holds where a
// max_tokens may be), and must leave the request's body to be sent whole.
func FuzzEstimateTokens(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hello there"}],"max_tokens":16}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"héllo"},{"type":"image_url"}]}]}`,
		`{"model":"m","prompt":["a","bb",["ccc"]],"max_tokens":-5}`,
		`{"model":"m","input":"one text"}`,
		`{"model":"m","input":[{"text":"x"}],"max_tokens":9223372036854775807}`,
		`{"messages":null}`, `[]`, ``, `{"max_tokens":1e30}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := http.NewRequest(http.MethodPost, "http://sim.test/v1/chat/completions", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		n := transport.EstimateTokens(req)
		prompt, output := transport.RequestTokens(req)
		if n < 1 || prompt < 0 || output < 0 {
			t.Fatalf("estimate %d (prompt %d, output %d) under the least for %q", n, prompt, output, body)
		}
		if want := int(min(max(int64(prompt)+int64(output), 1), math.MaxInt32)); n != want {
			t.Fatalf("estimate %d is not prompt %d plus output %d", n, prompt, output)
		}
		// The text counted is at most every character of the body.
		// A body that cannot be read costs 1.
		if textMax := max((utf8.RuneCount(body)+3)/4, 1); prompt > textMax {
			t.Fatalf("prompt estimate %d over the body's %d", prompt, textMax)
		}
		// The output is a number the body holds: nested values are
		// checked only for brackets and strings (as FindModel checks
		// them), so a body JSON refuses may still set it; one JSON
		// accepts sets it only under a max-tokens key.
		if output > largestNumber(body) {
			t.Fatalf("output estimate %d over every number in %q", output, body)
		}
		if output > 0 && json.Valid(body) && !hasMaxTokens(body) {
			t.Fatalf("output estimate %d for %q, which sets no max tokens", output, body)
		}
		got, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the request body was consumed: %v", err)
		}
	})
}

// numberRE matches what could be a JSON number.
var numberRE = regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?`)

// largestNumber returns the largest whole number, at most math.MaxInt32,
// that a number written in body rounds down to (0 if none).
func largestNumber(body []byte) int {
	best := 0.0
	for _, m := range numberRE.FindAll(body, -1) {
		if f, err := strconv.ParseFloat(string(m), 64); err == nil {
			best = max(best, min(math.Floor(f), math.MaxInt32))
		}
	}
	return int(best)
}

// hasMaxTokens reports whether body starts with a JSON object with a
// top-level key that encoding/json matches to max_tokens,
// max_completion_tokens or max_output_tokens: it matches keys without
// regard to case, and escapes in a key are decoded first ("mAX_tokens" and
// "max\u005ftokens" both count), so it allows more than the estimate
// reads. Like the estimate, it reads the first JSON value.
func hasMaxTokens(body []byte) bool {
	var top map[string]json.RawMessage
	if json.NewDecoder(bytes.NewReader(body)).Decode(&top) != nil {
		return false
	}
	for k := range top {
		if strings.EqualFold(k, "max_tokens") || strings.EqualFold(k, "max_completion_tokens") || strings.EqualFold(k, "max_output_tokens") {
			return true
		}
	}
	return false
}
