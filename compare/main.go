// Command compare measures client stacks against the simulated provider,
// scenario by scenario and over the model matrix of package conformance,
// and writes the comparison: a Markdown table per scenario and for the
// matrix, and plots of the requests accepted per second, into the module's
// docs directory, and prints the tables.
//
//	go run ./compare [-docs dir] [-run regexp]
//
// The scenarios run in testing/synctest bubbles, where hours of traffic
// pass in virtual time in a few seconds and every wait is exact; only a
// test can create a bubble, so the command runs this package's TestCompare
// with `go test` and reads back what it wrote. It needs the go command and
// the module's source, as `go run` does.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const pkg = "github.com/steadyapi/steady/compare"

func main() {
	docs := flag.String("docs", "", "directory to write comparison.md and the plots into (default: the module's docs/)")
	run := flag.String("run", "", "regular expression selecting the scenarios, and the matrix's cases as matrix-<name>, to run (default: all)")
	flag.Parse()
	if err := compare(*docs, *run); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func compare(docs, run string) error {
	if docs == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/steadyapi/steady").Output()
		if err != nil {
			return fmt.Errorf("finding the module's directory: %w", err)
		}
		docs = filepath.Join(strings.TrimSpace(string(out)), "docs")
	}
	docs, err := filepath.Abs(docs)
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "test", "-count=1", "-timeout=10m", "-run=^TestCompare$", pkg,
		"-args", "-compare.docs="+docs, "-compare.run="+run)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go test %s: %w", pkg, err)
	}
	md, err := os.ReadFile(filepath.Join(docs, "comparison.md"))
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(md)
	return err
}
