package transport_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

// FuzzModel checks FindModel and RewriteModel against encoding/json: they
// never panic; on a valid JSON object with exactly one top-level string
// "model" they find it; and a rewrite, parsed again, has the new model and
// every other member as it was.
func FuzzModel(f *testing.F) {
	for _, s := range []string{
		`{"model":"a","messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[],"model":"meta-llama\/x","stream":true}`,
		`{"mod\u0065l":"m","x":{"model":"n"}}`,
		`{"a":"\\\"","model":"\u00e9"}`,
		`{"model":"a","model":"b"}`,
		`{"model":1}`,
		`[{"model":"a"}]`,
		` { "x" : [ [ { } ] ] , "model" : "" } `,
		`{"model":"a"`,
		`not json`,
	} {
		f.Add([]byte(s), "mistralai/Mixtral-8x7B-Instruct-v0.1")
	}
	f.Fuzz(func(t *testing.T, body []byte, newModel string) {
		orig := bytes.Clone(body)
		model, found := transport.FindModel(body)
		rewritten, rewrote := transport.RewriteModel(body, newModel)
		require.Equal(t, orig, body, "the input is never modified")
		require.Equal(t, found, rewrote, "FindModel and RewriteModel agree")

		want, single := topLevelModel(body)
		if single {
			require.True(t, found, "a valid object with one string model: it is found")
		}
		if !found {
			return
		}
		if !json.Valid(body) {
			return // the scanner may accept what only a strict parser refuses
		}
		require.True(t, single, "a model found in valid JSON is the only top-level one, and a string")
		assert.Equal(t, want, model)

		var before, after map[string]any
		require.NoError(t, json.Unmarshal(body, &before))
		require.NoError(t, json.Unmarshal(rewritten, &after), "the rewrite is valid JSON: %q", rewritten)
		var normalized string // the new model as any JSON parser reads it back
		q, err := json.Marshal(newModel)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(q, &normalized))
		assert.Equal(t, normalized, after["model"])
		delete(before, "model")
		delete(after, "model")
		assert.Equal(t, before, after, "every other member is unchanged")
	})
}

// topLevelModel reports whether body is a valid JSON object with exactly one
// top-level member named "model", a string, and returns it. It walks the
// tokens with encoding/json, so it sees duplicates a map would hide.
func topLevelModel(body []byte) (string, bool) {
	if !json.Valid(body) {
		return "", false
	}
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
		if err := dec.Decode(&v); err != nil {
			return "", false
		}
		if tok != "model" {
			if depth(v) >= 512 {
				return "", false // deeper than the scanner follows
			}
			continue
		}
		n++
		if json.Unmarshal(v, &model) != nil || len(v) == 0 || v[0] != '"' {
			return "", false
		}
	}
	return model, n == 1
}

// depth is the deepest bracket nesting of the valid JSON v.
func depth(v []byte) int {
	d, deepest := 0, 0
	inString := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}
