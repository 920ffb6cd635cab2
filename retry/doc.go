// Package retry is steady's retry decorator: it sends a request again when
// the provider pushes back (429, 408, 409, 500, 502, 503, 504, 529; see
// [ShouldRetry]) or the connection fails before a response, waiting as
// long as the server directs (retry-after-ms, Retry-After,
// x-ratelimit-reset) or, when it directs nothing, an exponential backoff
// with full jitter. Every wait respects the caller's
// deadline, retries are bounded by a retry budget shared by all requests
// through one decorator, a request the server may already have processed is
// not sent twice unless it is idempotent, and when it gives up the caller
// gets the server's last response unchanged, status and body, not an error.
//
//	client := &http.Client{Transport: transport.Chain(http.DefaultTransport,
//		retry.New(), // 4 retries, 500 ms–8 s backoff, 20% budget
//	)}
//
// [New] takes [Option]s; without any it uses the documented defaults.
package retry
