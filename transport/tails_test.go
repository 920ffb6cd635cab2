package transport

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// resetTails empties the tails kept, for a test that must know what they
// hold. (No test of this package runs in parallel.)
func resetTails(t *testing.T) {
	t.Helper()
	clearTails()
	t.Cleanup(clearTails)
}

func clearTails() {
	for i := range tails {
		tails[i].Store(nil)
		tailWords[i].Store(0)
	}
}

// tailHeads are what comes before a kept tail in the bodies of
// TestTailsAgreeWithLocate: the bodies an application sends, and bodies
// built to make a tail mean something else (inside a string, after a
// backslash, inside the first member, nested, before a first "model").
var tailHeads = []string{
	`{"max_tokens":512,"messages":[{"role":"user","content":"hi"}],`,
	`{"messages":[{"role":"user","content":"a \"quoted\" word\\"}],`,
	`{"max_tokens":1,`,
	` { "a" : [ [ { } ] ] ,  `,
	`{"model":"first","x":1,`,
	`{"a":"`,
	`{"a":"\`,
	`{"a":"\\`,
	`{"a":"x\\\`,
	`{"a":`,
	`{"a":{"b":1,`,
	`{"a":[`,
	`{`,
	``,
	`[`,
	`{"a":"b"}`,
	`{"a":"b"`,
	`{"model":`,
	`{"model":"m",`,
	`{"mod`,
	`{"x":"y","z":"`,
	`{"messages":[],"stop":["`,
}

// tailEnds are the tails kept: what follows a model's key to the end.
var tailEnds = []string{
	`"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","stream":true,"temperature":0.7}`,
	`"model":"gpt-4o"}`,
	`"model" : "claude-sonnet-4-5" , "stream" : false }` + "\n",
	`"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"q":{"type":"string","description":"a \"q\" or \\"}}}}}],"tool_choice":"auto"}`,
	`"model":"m","stop":["\"}","\\"],"n":1}`,
	`"model":"caf\u00e9","seed":-12.5e3,"logprobs":null}`,
	`"model":"m","x":"a\"b\\\"c"}`,
}

// checkTail holds locateModel, with body's tail kept or not, to locate
// reading the whole of what it reads.
func checkTail(t *testing.T, body string) {
	t.Helper()
	b := []byte(body)
	wm, wok, wdecided := locate(b, false)
	m, ok, decided := locateModel(b)
	require.Equal(t, wdecided, decided, "decided, for %q", body)
	require.Equal(t, wok, ok, "found, for %q", body)
	require.Equal(t, wm, m, "model, for %q", body)
}

// TestTailsAgreeWithLocate keeps each tail from a body an application
// sends, then holds every body that ends with it, whatever comes before,
// to what locate finds reading member by member.
func TestTailsAgreeWithLocate(t *testing.T) {
	resetTails(t)
	for _, tail := range tailEnds {
		_, ok, decided := locateModel([]byte(tailHeads[0] + tail))
		require.True(t, ok && decided, "the model of %q", tailHeads[0]+tail)
	}
	for _, tail := range tailEnds {
		m, ok := lookupTail([]byte(tailHeads[0]+tail), strings.IndexByte(tailHeads[0], '"'))
		require.True(t, ok, "kept: %q", tail)
		require.NotEmpty(t, m)
		for _, head := range tailHeads {
			for _, sep := range []string{"", ",", " ", "\\", `"`, "\\\\", "}", ":"} {
				checkTail(t, head+sep+tail)
			}
		}
	}
}

// TestTailsRead shows that a body matched by a kept tail is not read
// member by member: a body that differs before the tail gets the tail's
// model, as locate would, and one whose tail differs does not.
func TestTailsRead(t *testing.T) {
	resetTails(t)
	tail := `"model":"a","stream":true}`
	m, _, _ := locateModel([]byte(`{"max_tokens":5,"messages":[],` + tail))
	require.Equal(t, "a", m)
	require.NotNil(t, tails[0].Load(), "the tail is kept")
	assert.Equal(t, tail, string(tails[0].Load().tail))

	m, ok := lookupTail([]byte(`{"n":1,"messages":[{"role":"user"}],`+tail), 1)
	assert.True(t, ok)
	assert.Equal(t, "a", m)
	// The same tail in the first member, or after a backslash, is not it.
	_, ok = lookupTail([]byte(`{`+tail), 1)
	assert.False(t, ok, "a tail that starts at the first member")
	_, ok = lookupTail([]byte(`{"x":"\`+tail), 1)
	assert.False(t, ok, "a tail after a backslash")
	_, ok = lookupTail([]byte(`{"x":1,`+strings.Replace(tail, "true", "false", 1)), 1)
	assert.False(t, ok, "another tail")
}

// TestTailsWordIsAHint shows that a slot's last word only says which
// tails to compare: a slot whose word and tail disagree for an instant
// (a tail replaced between the two writes) matches by its tail alone.
func TestTailsWordIsAHint(t *testing.T) {
	resetTails(t)
	tail := `"model":"a","stream":true}`
	other := `"model":"b","stream":1234}`
	tails[0].Store(&modelTail{[]byte(tail), "a"})
	tailWords[0].Store(lastWord([]byte(other)))
	_, ok := lookupTail([]byte(`{"n":1,`+other), 1)
	assert.False(t, ok, "a body that ends as the word does, but not as the tail")
	_, ok = lookupTail([]byte(`{"n":1,`+tail), 1)
	assert.False(t, ok, "a body whose end is not the slot's word is not compared")

	tailWords[0].Store(lastWord([]byte(tail)))
	m, ok := lookupTail([]byte(`{"n":1,`+tail), 1)
	assert.True(t, ok)
	assert.Equal(t, "a", m)
	_, ok = lookupTail([]byte(`1}`), 0)
	assert.False(t, ok, "a body shorter than a word")
}

// TestTailsAreBounded shows what is kept: eight tails, each no longer
// than maxTail, the first eight in turn, and once the slots are full, a
// new tail for about one miss in tailEvery.
func TestTailsAreBounded(t *testing.T) {
	resetTails(t)
	long := `{"messages":[],"model":"m","x":"` + strings.Repeat("a", maxTail) + `"}`
	m, _, _ := locateModel([]byte(long))
	require.Equal(t, "m", m)
	require.Nil(t, tails[0].Load(), "a tail longer than maxTail is not kept")

	body := func(i int) []byte { return fmt.Appendf(nil, `{"n":1,"model":"m%d","seed":%d}`, i, i) }
	for i := range len(tails) {
		locateModel(body(i))
	}
	for i := range tails {
		require.NotNil(t, tails[i].Load())
		assert.Equal(t, fmt.Sprintf("m%d", i), tails[i].Load().model)
	}
	// Each miss keeps its tail with a chance of 1 in tailEvery: of 1,600
	// misses, 100 on average, and fewer than 50 or more than 150 with a
	// chance under 1e-6.
	const misses = 100 * tailEvery
	kept := 0
	for i := range misses {
		var before [len(tails)]*modelTail
		for j := range tails {
			before[j] = tails[j].Load()
		}
		locateModel(body(len(tails) + i))
		for j := range tails {
			if tails[j].Load() != before[j] {
				kept++
			}
		}
	}
	assert.InDelta(t, misses/tailEvery, kept, 50, "tails kept of %d misses", misses)
	// And each slot was replaced: one is missed by 100 draws with a chance
	// of (7/8)^100, under 2e-6.
	for i := range tails {
		assert.NotEqual(t, fmt.Sprintf("m%d", i), tails[i].Load().model, "slot %d replaced", i)
	}
}

// TestTailsRandom holds locateModel to locate on random bodies that end
// with random tails: a model and members after it, then random heads
// before them, made of the bytes that matter to JSON's structure (most of
// them not JSON at all).
func TestTailsRandom(t *testing.T) {
	resetTails(t)
	r := rand.New(rand.NewPCG(3, 4))
	pick := func(of []string) string { return of[r.IntN(len(of))] }
	alphabet := []string{`"`, `\`, `{`, `}`, `[`, `]`, `,`, `:`, ` `, `a`, `1`, `"model"`, `"x"`, `true`}
	random := func(n int) string {
		var s strings.Builder
		for range n {
			s.WriteString(pick(alphabet))
		}
		return s.String()
	}
	values := []string{`1`, `-2.5e3`, `true`, `null`, `"s"`, `"a\"b\\"`, `[1,"]"]`, `{"x":"}"}`, `[{"y":[]}]`, `""`}
	names := []string{`m`, `gpt-4o`, `a\"b`, ``, `caf\u00e9`}
	for range 2000 {
		tail := `"model":"` + pick(names) + `"`
		for range r.IntN(4) {
			tail += `,"` + pick([]string{"k", "stream", "model", `\"`}) + `":` + pick(values)
		}
		tail += "}"
		if r.IntN(4) == 0 {
			tail += random(r.IntN(3)) // and some tails that are not JSON
		}
		clearTails()
		locateModel([]byte(`{"a":1,` + tail)) // kept, if it decides
		for range 10 {
			checkTail(t, "{"+random(r.IntN(10))+tail)
			checkTail(t, `{"a":`+random(r.IntN(10))+tail) // one first member, and more
		}
	}
}

// FuzzTails is TestTailsRandom for any bodies: a tail kept from one body,
// and another body that ends with it.
func FuzzTails(f *testing.F) {
	f.Add(tailHeads[0], tailHeads[5], tailEnds[0])
	f.Add(`{"a":1,`, `{"x":"\`, tailEnds[4])
	f.Fuzz(func(t *testing.T, head1, head2, tail string) {
		clearTails()
		locateModel([]byte(head1 + tail))
		checkTail(t, head2+tail)
	})
}

// BenchmarkLocateModel is locateModel on a 2 KB chat request whose model
// comes before a few options, as openai-go writes it: "seen" sends one
// body again and again (its tail kept), "new" bodies that each end with a
// seed unseen before (a tail compared with every kept one, and one kept
// in 16), and "unkept" the same new bodies read member by member with no
// tail kept or compared, as before tails were kept.
//
//	go test -run x -bench LocateModel ./transport/
func BenchmarkLocateModel(b *testing.B) {
	body := func(seed int) []byte {
		var s strings.Builder
		s.WriteString(`{"max_tokens":512,"messages":[`)
		for i := 0; s.Len() < 1900; i++ {
			if i > 0 {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `{"role":"user","content":"Message %d: the quick brown fox, \"quoted\"."}`, i)
		}
		fmt.Fprintf(&s, `],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","stream":true,"temperature":0.7,"seed":%04d}`, seed)
		return []byte(s.String())
	}
	bodies := make([][]byte, 512)
	for i := range bodies {
		bodies[i] = body(i)
	}
	run := func(name string, kept bool, next func(i int) []byte) {
		b.Run(name, func(b *testing.B) {
			clearTails()
			b.Cleanup(clearTails)
			i := 0
			for b.Loop() {
				if m, ok, _ := locate(next(i), kept); !ok || m == "" {
					b.Fatal("no model")
				}
				i++
			}
		})
	}
	run("seen", true, func(int) []byte { return bodies[0] })
	// 512 bodies in turn: more than the kept tails see before they are
	// replaced, few enough that their ends stay in the CPU's cache, so
	// that what differs is the reading, not the memory.
	run("new", true, func(i int) []byte { return bodies[i%len(bodies)] })
	run("unkept", false, func(i int) []byte { return bodies[i%len(bodies)] })
}
