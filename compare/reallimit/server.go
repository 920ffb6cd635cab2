package reallimit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// startTimeout bounds how long a server may take to start answering.
const startTimeout = 15 * time.Second

// Server is a rate-limited HTTP server running as a child process on a
// loopback port. Close stops it.
type Server struct {
	// URL is the server's root, http://127.0.0.1:port, with no trailing
	// slash.
	URL string

	cmd   *exec.Cmd
	stdin io.Closer     // held open: the Node server exits when it closes
	done  chan struct{} // closed when the process has exited
	err   error         // the process's exit status, once done is closed
	log   *lockedBuffer // what the process wrote to stdout and stderr
	files func() string // the server's own logs, read on demand for errors

	closeOnce sync.Once
}

// start runs cmd, which logs into s.log, and watches it exit.
func (s *Server) start(cmd *exec.Cmd) error {
	s.cmd, s.done = cmd, make(chan struct{})
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()
	return nil
}

// Exited reports whether the server's process has ended.
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Output returns what the server wrote to its standard output and error,
// and its log files, for a failure message.
func (s *Server) Output() string {
	out := s.log.String()
	if s.files != nil {
		out += s.files()
	}
	return out
}

// Close stops the server: SIGTERM, then SIGKILL if it has not exited in
// 5 s. It returns nil once the process is gone, however it ended.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.stdin != nil {
			s.stdin.Close()
		}
		if s.cmd == nil || s.cmd.Process == nil {
			return
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
	return nil
}

// waitReady polls GET url until it answers want, the process exits, or
// startTimeout passes.
func (s *Server) waitReady(url string, want int) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(startTimeout)
	var last error
	for time.Now().Before(deadline) {
		if s.Exited() {
			return fmt.Errorf("exited before it answered (%v):\n%s", s.err, s.Output())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
			err = fmt.Errorf("GET %s: %s, want %d", url, resp.Status, want)
		}
		last = err
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %v: %v\n%s", startTimeout, last, s.Output())
}

// freePort returns a loopback port that was free a moment ago. Another
// process may take it before the server binds it; the starters retry.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func loopbackURL(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// lockedBuffer collects a child's output, written by os/exec's copying
// goroutines while a failure message may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// errNotFound marks a missing program or module, which a test skips on
// (or fails on in CI), apart from a server that is there but broken.
var errNotFound = errors.New("not installed")

// IsNotInstalled reports whether err says a server's program or modules
// are missing, rather than that the server failed.
func IsNotInstalled(err error) bool { return errors.Is(err, errNotFound) }
