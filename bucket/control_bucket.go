package bucket

// limitRate bounds the rates the bucket adopts from its store to
// perSecond, the ceiling of the Limit that drives it.
func (b *Bucket) limitRate(perSecond float64) {
	b.mu.Lock()
	b.maxRate = perSecond
	b.mu.Unlock()
}
