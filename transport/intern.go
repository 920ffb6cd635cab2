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
// changed, so a lookup takes no lock.
var (
	interned   atomic.Pointer[map[string]string]
	internedMu sync.Mutex
)

// modelName returns b as a string, the same string for the same name.
func modelName(b []byte) string {
	if m := interned.Load(); m != nil {
		if s, ok := (*m)[string(b)]; ok {
			return s
		}
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
		if v, ok := (*old)[s]; ok {
			return v
		}
		n = len(*old)
	}
	if n >= maxInterned {
		return s
	}
	m := make(map[string]string, n+1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	m[s] = s
	interned.Store(&m)
	return s
}
