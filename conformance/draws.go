package conformance

import "math/bits"

// The server's random choices (latency jitter, fault shares) are not taken
// from one generator in arrival order. Inside a testing/synctest bubble,
// goroutines woken at the same virtual instant run in no fixed order, and a
// client's own jitter moves its requests about; a sequence dealt out in
// arrival order would hand a different draw to each request on every run,
// so whether one request drew a fault on every attempt, or a breaker saw
// five in a row, would change from run to run under one seed. Instead each
// choice is a hash of the seed, the request's identity and which pass of
// that identity through the limits it is: a request meets the same fate on
// its n-th pass whatever arrives around it.

// requestIdentity names a request as the workload wrote it: its method,
// path and body (whose FNV-1a is bodyHash). A workload that numbers its
// requests in their bodies, as [Workload]s do, gives each request an
// identity of its own; a retry of it, sent byte-identical as the
// RoundTripper contracts want, keeps it. The API key is left out so that
// every stack of a comparison meets the same fates on the same requests,
// whatever key it sends (common random numbers, which make the stacks'
// difference the stacks' doing).
func requestIdentity(method, path string, bodyHash uint64) uint64 {
	h := mix64(bodyHash ^ fnv1a(method))
	return mix64(h ^ fnv1a(path))
}

// draws is the random source of one pass of one request through the
// server's limits. Each choice takes a salt of its own, so that the choices
// of one pass are independent of each other.
type draws struct{ h uint64 }

// Salts of the choices a pass makes: the latency jitter, and fault i's share
// at saltFault+i.
const (
	saltLatency uint64 = iota
	saltFault
)

// newDraws is the source of pass number pass (1 for the first) of the
// request named id, under seed.
func newDraws(seed int64, id uint64, pass uint64) draws {
	h := mix64(uint64(seed) ^ 0x5eed5eed5eed5eed)
	h = mix64(h ^ id)
	return draws{h: mix64(h + pass)}
}

// bits64 is the choice of salt, 64 uniformly random bits.
func (d draws) bits64(salt uint64) uint64 {
	return mix64(d.h + (salt+1)*0x9e3779b97f4a7c15)
}

// float is the choice of salt, uniform in [0, 1).
func (d draws) float(salt uint64) float64 {
	return float64(d.bits64(salt)>>11) / (1 << 53)
}

// int64n is the choice of salt, uniform in [0, n) for n > 0 (its bias,
// under 2^-40 for any duration a server waits, is beside the point here).
func (d draws) int64n(salt uint64, n int64) int64 {
	hi, _ := bits.Mul64(d.bits64(salt), uint64(n))
	return int64(hi)
}

// mix64 is the finaliser of the SplitMix64 generator: a bijection of 64-bit
// words in which every input bit changes about half the output bits, so
// that hashes of neighbouring inputs (pass 1 and pass 2) are unrelated.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
