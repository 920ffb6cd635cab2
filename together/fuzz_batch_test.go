package together_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/steadyapi/steady/together"
)

// batchCountOfJSON is the count of a batch body as encoding/json reads it
// whole: what the batch guard counts as it reads.
func batchCountOfJSON(b []byte) int {
	var body struct {
		Requests []json.RawMessage `json:"requests"`
		Input    string            `json:"input"`
	}
	if json.NewDecoder(bytes.NewReader(b)).Decode(&body) != nil {
		return 0
	}
	if body.Requests != nil {
		return len(body.Requests)
	}
	n := 0
	for _, line := range bytes.Split([]byte(body.Input), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}

// The batch guard reads a body a piece at a time, not through
// encoding/json: it must count every body as encoding/json reads it, no
// more and no fewer requests, and 0 where encoding/json fails.
func FuzzBatchCount(f *testing.F) {
	for _, seed := range []string{
		`{"requests":[{"custom_id":"a","body":{}},{"custom_id":"b","body":{"x":[1,2.5e-3,-0,true,false,null]}}]}`,
		`{"input":"{\"custom_id\":\"a\"}\n\n  \n{\"custom_id\":\"b\"}\r\n\u000a{}\u2028\u0085"}`,
		`{"input":" \u00a0\n\u3000x\n\ud800\n\udc00\ud83d\ude00\n"}`,
		`{"Requests":[1,2],"REQUESTS":null,"input":"a\nb"}`,
		`{"requeſts":[1],"İnput":"a","ınput":"b\nc","requeſts":[1,2,3]}`, `{"İnput":"a\nb"}`, `{"inpu\u0074":"a\nb"}`,
		`{"input":"a\nb","input":null}`, `{"requests":[],"input":"a"}`,
		`{"requests":{},"input":"a"}`, `{"input":5}`, `{"input":"a"}x`, `{"requests":[01]}`,
		`{"requests":[1.]}`, `{"requests":[1e]}`, `{"requests":[-]}`, `{"requests":["\x"]}`,
		"{\"input\":\"a\tb\"}", "{\"input\":\"\xff\n\xc3\"}", `{"requests":[[[[]]]]}`, `{"requests":[`,
		`null`, `[]`, `"x"`, ``, ` {} `, `{"a":{"b":[{"c":"d"}]},"requests":[{"a":1}]}`,
		`{"requests":[` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := together.CountBatch(body), batchCountOfJSON(body); got != want {
			t.Fatalf("counted %d requests in %q; encoding/json reads %d", got, body, want)
		}
	})
}
