package bucket

import (
	"testing"
	"time"
)

// BenchmarkDispatch is the queue's own cost per grant, apart from waking
// goroutines: 10,000 waiters of one priority queued behind a pause, then
// granted at once by a server window, as in BenchmarkQueue10k.
func BenchmarkDispatch(b *testing.B) {
	bk := New(PerSecond(1), WithInitial(0))
	ws := make([]*waiter, 10_000)
	for i := range ws {
		ws[i] = &waiter{ch: make(chan struct{}, 1)}
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		bk.mu.Lock()
		t := bk.now()
		bk.s.window(-inf, t+1e18, 0, 0)
		for _, w := range ws {
			select {
			case <-w.ch:
			default:
			}
			w.n, w.deadline, w.granted = 1, inf, false
			bk.q.push(w)
			bk.repick(t)
		}
		bk.s.window(bk.s.taken+float64(len(ws)), t+1e18, 0, 0)
		b.StartTimer()
		bk.dispatch(t)
		bk.mu.Unlock()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ws)), "ns/grant")
}

// BenchmarkUseTracker is what the use-based rule costs an answer while it
// is read (slow start, and probing after a pause): a success counted and
// the rule's limit read, an hour of successes kept, ten a second.
func BenchmarkUseTracker(b *testing.B) {
	u := newUseTracker(&useRule{factor: 2, span: time.Hour, base: 1})
	t := time.Unix(1_800_000_000, 0)
	for range 36_000 {
		u.succeeded(t, 1)
		t = t.Add(100 * time.Millisecond)
	}
	b.ReportAllocs()
	for b.Loop() {
		u.succeeded(t, 1)
		_ = u.predict(t)
		t = t.Add(100 * time.Millisecond)
	}
}
