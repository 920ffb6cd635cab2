// Package reallimit runs steady's stacks against rate limiters it did not
// write, on loopback: nginx's limit_req (a leaky bucket that sends no rate
// headers at all) and the Node package express-rate-limit (fixed windows,
// announced in the IETF RateLimit header drafts 7 and 8, or in the older
// X-RateLimit-* headers). A controller tuned only against the simulator
// of package conformance is tuned to that simulator's assumptions; these
// servers make none of them.
//
// Each run is graded against an oracle computed from the server's own
// configuration: the least time a client that knows the server's state
// needs to have every request admitted ([Limiter.Admit]), plus one round
// trip. Runs report their time, the oracle's, the ratio of the two, what
// the server saw (arrivals, 429s) and what the caller lost.
//
// The servers run as child processes: [StartNginx] writes its
// configuration into a directory of its own, [StartExpress] runs
// testdata/express/server.js, whose dependencies `npm ci` installs from
// the committed package-lock.json. The package's tests skip when nginx,
// node or those modules are missing, and fail instead when the CI
// environment variable is set. The runs graded by the wall clock,
// TestRealLimiters, go only when STEADY_REAL is set (run them alone: other
// tests' load would pass for the client's), and write their table as
// Markdown to the file named by STEADY_REAL_DOCS (a path relative to this
// directory, when it is not absolute), which runs them too:
//
//	STEADY_REAL_DOCS=../../docs/real-limiters.md go test -run TestRealLimiters ./compare/reallimit/
package reallimit
