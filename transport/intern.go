package transport

import (
	"sync"
	"sync/atomic"
)

// maxInterned bounds the model names kept: more than any account uses,
// and a client that sends thousands of names gets fresh strings past it.
const maxInterned = 1024

// The model names seen, so that reading the model of a request costs no
// allocation once its name has been seen: a map that is replaced, never
// changed, so a lookup takes no lock. Only names that are their own JSON
// string (no escape, valid UTF-8) are kept, so that bytes equal to one of
// them need no decoding.
var (
	interned   atomic.Pointer[map[string]*string]
	internedMu sync.Mutex
)

// recent holds names of the map by a cheap hash of a few of their bytes:
// a request's model is nearly always one of a handful, found there with
// one comparison, without hashing the whole name for the map.
var recent [64]atomic.Pointer[string]

func recentSlot(b []byte) *atomic.Pointer[string] {
	n := len(b)
	return &recent[(uint(n)*31^uint(b[0])*7^uint(b[n/2])<<2^uint(b[n-1]))%uint(len(recent))]
}

// internedName returns the name kept equal to b, if there is one.
func internedName(b []byte) (string, bool) {
	if len(b) == 0 {
		return "", false
	}
	slot := recentSlot(b)
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p, true
	}
	if m := interned.Load(); m != nil {
		if p, ok := (*m)[string(b)]; ok {
			slot.Store(p)
			return *p, true
		}
	}
	return "", false
}

// modelName returns b, a name that is its own JSON string, as a string:
// the same string for the same name.
func modelName(b []byte) string {
	if s, ok := internedName(b); ok {
		return s
	}
	s := string(b)
	if len(s) > MaxKeyLen {
		return s
	}
	internedMu.Lock()
	defer internedMu.Unlock()
	old := interned.Load()
	n := 0
	if old != nil {
		if p, ok := (*old)[s]; ok {
			return *p
		}
		n = len(*old)
	}
	if n >= maxInterned {
		return s
	}
	m := make(map[string]*string, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	p := new(string)
	*p = s
	m[s] = p
	interned.Store(&m)
	return s
}
