package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/steadyapi/steady/transport"
)

// The gjson and sjson side of transport's BenchmarkModel and
// BenchmarkModelLongString, with the scanner beside them, on the same
// bodies. transport scans by hand rather than depend on them; these
// benchmarks are why that costs nothing.

// benchChatBody returns a chat request of about size bytes whose model comes
// last, as encoders that sort keys write it: the worst case for a scanner.
func benchChatBody(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"max_tokens":512,"messages":[`)
	for i := 0; b.Len() < size-200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"role":"user","content":"Message %d: the quick brown fox jumps over the lazy dog, \"quoted\" and escaped\\n line."}`, i)
	}
	b.WriteString(`],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo","stream":true,"temperature":0.7}`)
	return b.Bytes()
}

func BenchmarkModel(b *testing.B) {
	const alternate = "mistralai/Mixtral-8x7B-Instruct-v0.1"
	for _, size := range []int{2 << 10, 100 << 10} {
		body := benchChatBody(size)
		name := fmt.Sprintf("%dKB", size>>10)
		b.Run("find/stdlib/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if m, ok := transport.FindModel(body); !ok || m == "" {
					b.Fatal("no model")
				}
			}
		})
		b.Run("find/gjson/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if m := gjson.GetBytes(body, "model"); m.Type != gjson.String {
					b.Fatal("no model")
				}
			}
		})
		b.Run("find+rewrite/stdlib/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := transport.RewriteModel(body, alternate); !ok {
					b.Fatal("no model")
				}
			}
		})
		b.Run("find+rewrite/gjson+sjson/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if m := gjson.GetBytes(body, "model"); m.Type != gjson.String {
					b.Fatal("no model")
				}
				if _, err := sjson.SetBytes(body, "model", alternate); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkModelLongString is a request whose bulk is one long string (a
// document to summarise), with the model after it.
func BenchmarkModelLongString(b *testing.B) {
	doc := strings.Repeat("Lorem ipsum dolor sit amet, consectetur \\\"adipiscing\\\" elit. ", (100<<10)/60)
	body := []byte(`{"messages":[{"role":"user","content":"` + doc + `"}],"model":"meta-llama/Llama-3.3-70B-Instruct-Turbo"}`)
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := transport.FindModel(body); !ok {
				b.Fatal("no model")
			}
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if m := gjson.GetBytes(body, "model"); m.Type != gjson.String {
				b.Fatal("no model")
			}
		}
	})
}
