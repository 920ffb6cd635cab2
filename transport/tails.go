package transport

import (
	"bytes"
	"math/rand/v2"
	"sync/atomic"
)

// modelTail is the end of a body whose model locateModel found reading
// backward: its bytes from the model's key to the body's last byte, and
// the model.
type modelTail struct {
	tail  []byte
	model string
}

// maxTail bounds the tails kept: a model with a few small members after
// it (stream, temperature, a short list of tools) fits; a tail longer than
// that is read member by member each time.
const maxTail = 1 << 10

// tailEvery is how many misses go by, on average, once every slot is
// taken, before one replaces a kept tail (one drawn at random): bodies
// whose ends all differ (a seed, a user id after the model) cost a copy
// of a tail now and then, not one each.
const tailEvery = 16

// The tails of bodies whose model was found reading backward. An
// application's requests nearly always end the same way (the same model,
// the same options after it, only the messages before differ), so the
// next body that ends with one of them has its model at once, with one
// comparison, instead of being read member by member. A tail is kept only
// where it alone decided what locateModel found (see lookupTail), so that
// a body matched here gets exactly what locateModel would read. The slots
// fill in order and are then replaced at random; they are never emptied.
var tails [8]atomic.Pointer[modelTail]

// tailWords holds the last eight bytes of each kept tail, as one word, side
// by side: a body is compared with the tails whose end is its own, and a
// body whose end is new is turned away by one cache line. A word is
// written after its tail, and a tail read after its word, so the two may
// disagree for an instant: a body is compared with the tail it then finds,
// whole, and at worst misses a tail kept that instant.
var tailWords [len(tails)]atomic.Uint64

// lastWord is the last eight bytes of b, at least eight long, as a word.
func lastWord(b []byte) uint64 { return word(b, len(b)-8) }

// lookupTail returns the model of body b, whose first member's key opens
// at first and is not "model", when b ends with a kept tail: what
// locateModel would find. Reading backward, locateModel reads nothing of b
// before the tail but the byte just before it (which ends a run of
// backslashes before the key's quote, if any: there is none, for a tail
// kept), and finds the model there when the tail lies after the first
// member's key and within its budget of the end, as a kept tail does.
func lookupTail(b []byte, first int) (string, bool) {
	if len(b) < 8 {
		return "", false
	}
	w := lastWord(b)
	for i := range tailWords {
		// Tails that differ mostly differ at the end (a seed, a user's
		// id, the last option).
		if tailWords[i].Load() != w {
			continue
		}
		t := tails[i].Load()
		if t == nil {
			continue
		}
		c := len(b) - len(t.tail)
		if c <= first || b[c-1] == '\\' {
			continue
		}
		if bytes.Equal(b[c:], t.tail) {
			return t.model, true
		}
	}
	return "", false
}

// keepTail keeps b's tail from kStart, where locateModel found the key of
// model, for the bodies that end as b does; unless it is too long, or the
// key's quote follows a backslash (whose run lookupTail does not count).
func keepTail(b []byte, kStart int, model string) {
	if n := len(b) - kStart; n > maxTail || n < 8 || kStart == 0 || b[kStart-1] == '\\' {
		return
	}
	// The slots fill in order and are never emptied: once the last is
	// taken, every one is.
	if tails[len(tails)-1].Load() == nil {
		for i := range tails {
			if tails[i].Load() == nil {
				// Lost to another writer: this tail waits for a miss.
				if tails[i].CompareAndSwap(nil, &modelTail{bytes.Clone(b[kStart:]), model}) {
					tailWords[i].Store(lastWord(b))
				}
				return
			}
		}
	}
	// A draw, not a shared count: a miss touches nothing another core
	// writes unless it keeps its tail.
	if r := rand.Uint32(); r%tailEvery == 0 {
		i := (r / tailEvery) % uint32(len(tails))
		tails[i].Store(&modelTail{bytes.Clone(b[kStart:]), model})
		tailWords[i].Store(lastWord(b))
	}
}
