package reallimit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The express-rate-limit server's paths: chat completions under each
// prefix, each behind its own limiter of [ExpressLimit], announced in one
// header dialect. Every 429 carries Retry-After, in whole seconds.
const (
	ExpressDraft7Prefix = "/draft7/v1" // RateLimit: limit=100, remaining=99, reset=10 (and RateLimit-Policy)
	ExpressDraft8Prefix = "/draft8/v1" // RateLimit: "100-in-10sec"; r=99; t=10 (and RateLimit-Policy)
	ExpressLegacyPrefix = "/legacy/v1" // X-RateLimit-Limit, -Remaining, -Reset (a Unix time, rounded up)
)

// ExpressLimit is the limit of every path of the express server, per
// Authorization header: express-rate-limit's memory store opens a key's
// window at the first request it sees after the previous window ended, and
// counts refused requests in it too. It is passed to the server, so the
// oracle and the server cannot disagree.
var ExpressLimit = FixedWindow{Quota: 100, Window: 10 * time.Second}

// ExpressDir is the Node application StartExpress runs, relative to this
// package's directory (where `go test` runs its tests).
const ExpressDir = "testdata/express"

// StartExpress runs dir's server.js with node (bin, or "node" on the PATH
// when empty) on a free loopback port, limited by [ExpressLimit], and
// returns once it answers. The modules must have been installed with
// `npm ci --prefix dir`. An error for which [IsNotInstalled] holds means
// node or the modules are missing.
func StartExpress(bin, dir string) (*Server, error) {
	if bin == "" {
		bin = "node"
	}
	if _, err := exec.LookPath(bin); err != nil {
		return nil, fmt.Errorf("express: %w: %v", errNotFound, err)
	}
	for _, m := range []string{"express", "express-rate-limit"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", m, "package.json")); err != nil {
			return nil, fmt.Errorf("express: %w: module %s (run npm ci --prefix %s): %v", errNotFound, m, dir, err)
		}
	}
	cmd := exec.Command(bin, "server.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"STEADY_QUOTA="+strconv.Itoa(ExpressLimit.Quota),
		"STEADY_WINDOW_MS="+strconv.FormatInt(ExpressLimit.Window.Milliseconds(), 10))
	s := &Server{log: &lockedBuffer{}}
	first := &firstLine{next: s.log, line: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = first, s.log
	stdin, err := cmd.StdinPipe() // the server exits when this closes
	if err != nil {
		return nil, err
	}
	s.stdin = stdin
	if err := s.start(cmd); err != nil {
		stdin.Close()
		return nil, fmt.Errorf("express: %w", err)
	}
	var port int
	select {
	case line := <-first.line:
		port, err = strconv.Atoi(strings.TrimSpace(line))
		if err != nil || port <= 0 || port > 65535 {
			s.Close()
			return nil, fmt.Errorf("express: server.js printed %q, not its port:\n%s", line, s.Output())
		}
	case <-s.done:
		return nil, fmt.Errorf("express: server.js exited (%v):\n%s", s.err, s.Output())
	case <-time.After(startTimeout):
		s.Close()
		return nil, fmt.Errorf("express: server.js printed no port in %v:\n%s", startTimeout, s.Output())
	}
	s.URL = loopbackURL(port)
	if err := s.waitReady(s.URL+"/ready", 204); err != nil {
		s.Close()
		return nil, fmt.Errorf("express: %w", err)
	}
	return s, nil
}

// firstLine passes a child's output on to next and sends its first line,
// once it is complete, on line.
type firstLine struct {
	next *lockedBuffer
	line chan string

	mu   sync.Mutex
	buf  bytes.Buffer
	sent bool
}

func (f *firstLine) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.sent {
		f.buf.Write(p)
		if i := bytes.IndexByte(f.buf.Bytes(), '\n'); i >= 0 {
			f.line <- string(f.buf.Bytes()[:i])
			f.sent = true
		}
	}
	return f.next.Write(p)
}
