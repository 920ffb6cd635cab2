package transport_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/steadyapi/steady/transport"
)

// FuzzEstimateTokens feeds the token estimate any request body. It must
// not panic, must cost at least nothing and never more than the body could
// ask for (its characters, over four, plus a max_tokens it holds), and must
// leave the request's body to be sent whole.
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
		if n < 0 {
			t.Fatalf("a negative estimate %d for %q", n, body)
		}
		// The text counted is at most every character of the body.
		// A body that cannot be read costs 1.
		if textMax := max((utf8.RuneCount(body)+3)/4, 1); n > textMax && !hasMaxTokens(body) {
			t.Fatalf("estimate %d over the body's %d", n, textMax)
		}
		got, err := io.ReadAll(req.Body)
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("the request body was consumed: %v", err)
		}
	})
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
