package conformance

import (
	"net"
	"os"
	"syscall"
	"time"
)

// FaultKind is what a [Fault] does to the requests it hits.
type FaultKind uint8

const (
	// FaultStatus answers Fault.Status (503 when zero) with a Together
	// error body.
	FaultStatus FaultKind = iota
	// FaultReset resets the connection: RoundTrip returns [ErrReset]; over
	// HTTP the connection is closed without an answer.
	FaultReset
	// FaultHang never answers: the request waits until its context is done.
	FaultHang
	// FaultTruncate answers 200 with the usual body cut short: the body
	// ends with io.ErrUnexpectedEOF after half its bytes (half its chunks
	// when streamed), as a connection dropped mid-answer reads.
	FaultTruncate
	// FaultQuota answers as an account out of credit does, in the
	// server's [Dialect]: OpenAI's 429 insufficient_quota (with no rate
	// header: no wait cures it), Anthropic's 400 on a credit balance too
	// low, Together's 402.
	FaultQuota
)

// Fault is one scripted misbehaviour of the server: during [From, Until)
// after [NewServer], a Share of the requests to Endpoint for Model are hit
// by Kind. Faults are tried in order; the first one that hits a request
// decides its fate. A fault applies only to requests the rate limits let
// through and whose model is known, so it never hides a 429 or a 404.
type Fault struct {
	Kind     FaultKind // what the fault does
	Status   int       // the status of a FaultStatus; 0 means 503
	Endpoint string    // the endpoint name ([Chat], [Embeddings], ...); "" means every endpoint
	Model    string    // "" means every model
	// From and Until bound the window in which the fault is active,
	// measured from NewServer; Until 0 means forever.
	From, Until time.Duration
	// Share is the share of matching requests the fault hits: 0 < Share
	// <= 1; 0 means 1 (every one). Whether it hits is drawn for each pass
	// of a request through the limits, from [Config.Seed] and the request
	// alone (see there), independently of the other faults' draws and of
	// the request's earlier passes: a request retried n times is hit on
	// every pass with probability Share^(n+1).
	Share float64
}

// ErrReset is the error RoundTrip returns for a [FaultReset]: a
// *net.OpError wrapping ECONNRESET, as the standard transport reports a
// connection reset by the peer, so errors.Is(err, syscall.ECONNRESET) holds.
var ErrReset error = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}

// hits reports whether f applies to a request to endpoint for model that
// arrived at elapsed; u, uniform in [0, 1), is the request's draw for f,
// which decides a partial share.
func (f *Fault) hits(endpoint, model string, elapsed time.Duration, u float64) bool {
	if f.Endpoint != "" && f.Endpoint != endpoint {
		return false
	}
	if f.Model != "" && f.Model != model {
		return false
	}
	if elapsed < f.From || (f.Until > 0 && elapsed >= f.Until) {
		return false
	}
	if f.Share > 0 && f.Share < 1 {
		return u < f.Share
	}
	return true
}

// faultError is the Together error type and message for a fault's status.
func faultError(status int) (typ, code, msg string) {
	switch status {
	case 503:
		return "server_error", "service_unavailable", "The server is overloaded or not ready yet: the model is out of capacity."
	case 502:
		return "server_error", "bad_gateway", "Bad gateway."
	case 500:
		return "server_error", "internal_server_error", "Internal server error."
	case 504:
		return "server_error", "gateway_timeout", "Gateway timeout."
	case 402:
		return "invalid_request_error", "credit_limit", "Credit limit exceeded: raise your spending limit."
	}
	if status >= 500 {
		return "server_error", "server_error", "Server error."
	}
	return "invalid_request_error", "error", "Request failed."
}
