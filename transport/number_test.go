package transport

import (
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzParseNumber holds parseNumber's whole-number shortcut to strconv's
// reading: every string it accepts is read as strconv reads it, and it
// accepts exactly what strconv does, less the NaN, Inf and hex forms.
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"0", "007", "999999999999999", "1000000000000000", "9007199254740993", "1.5",
		"-1", "+2", "1e3", "", "12a", "0x10", "NaN", "inf", "١٢", "99999999999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseNumber(s)
		want, err := strconv.ParseFloat(s, 64)
		strict := err == nil && !math.IsNaN(want) && !math.IsInf(want, 0) && len(s) <= 32
		for i := 0; strict && i < len(s); i++ {
			c := s[i]
			strict = c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E'
		}
		assert.Equal(t, strict, ok, "%q accepted", s)
		if ok {
			assert.Equal(t, want, got, "%q", s)
		}
	})
}
