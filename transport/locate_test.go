package transport

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// lastQuoteBytes are the bytes lastQuote's tests are made of: the quote,
// and the bytes a test of eight at a time confuses with it when a borrow
// or a carry crosses from one byte to the next ('#', the quote with its
// high bit set, the bytes around those).
var lastQuoteBytes = []byte{'"', '#', '!', '\\', 'a', 0x00, 0x01, 0x7f, 0x80, 0xa2, 0xa3, 0xff}

// TestLastQuote holds lastQuote, which reads eight bytes at a time, to
// bytes.LastIndexByte on every span of bodies that put a quote, or a byte
// like it, at every place of a word.
func TestLastQuote(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = lastQuoteBytes[r.IntN(len(lastQuoteBytes))]
		}
		checkLastQuote(t, b)
	}
}

// FuzzLastQuote is TestLastQuote for any bytes.
func FuzzLastQuote(f *testing.F) {
	f.Add([]byte(`"#"#"##"##"\"a`))
	f.Add([]byte{0x22, 0xa2, 0x23, 0x00, 0x22, 0x21, 0x7f, 0xff, 0x22})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 64 {
			b = b[:64]
		}
		checkLastQuote(t, b)
	})
}

func checkLastQuote(t *testing.T, b []byte) {
	t.Helper()
	for lo := 0; lo <= len(b); lo++ {
		for j := lo; j <= len(b); j++ {
			want := bytes.LastIndexByte(b[lo:j], '"')
			if want >= 0 {
				want += lo
			}
			if got := lastQuote(b, lo, j); got != want {
				t.Fatalf("lastQuote(%q, %d, %d) = %d, want %d", b, lo, j, got, want)
			}
		}
	}
}
