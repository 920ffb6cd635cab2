package redisbucket_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The multi-process test re-executes the test binary: with childEnv set,
// TestMain runs runChild instead of the tests. A child is one replica: it
// reads the simulator's URL, the key and how long to run from its
// environment, drives traffic through bucket.Limit on a Redis-backed
// bucket, and prints its tally.
const (
	childEnv  = "STEADY_REDISBUCKET_CHILD"
	childURL  = "STEADY_REDISBUCKET_URL"
	childKey  = "STEADY_REDISBUCKET_KEY"
	childRun  = "STEADY_REDISBUCKET_RUN"
	tallyLine = "tally "
)

func runChild() int {
	run, err := time.ParseDuration(os.Getenv(childRun))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	r := newReplica(os.Getenv(addrEnv), os.Getenv(childKey))
	defer r.close()
	ctx, cancel := context.WithTimeout(context.Background(), run)
	defer cancel()
	var got tally
	drive(ctx, r.client, os.Getenv(childURL), 8, 5*time.Second, &got)
	if r.store.Local() {
		fmt.Fprintln(os.Stderr, "child: the store fell back to local limiting")
		return 3
	}
	fmt.Printf("%s%d %d %d %d %d\n", tallyLine, got.calls.Load(), got.ok.Load(), got.tooMany.Load(), got.other.Load(), got.errs.Load())
	return 0
}

// Four processes, each its own bucket.Limit on a Redis-backed bucket, all
// on one key, against the simulated provider over loopback at 20 requests
// a second for ten seconds.
func TestProcessesShareOneLimit(t *testing.T) {
	rdb := redisClient(t)
	sim := simulator()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	const run = 10 * time.Second
	env := append(os.Environ(), childEnv+"=1", childURL+"="+srv.URL, childKey+"="+testKey(t),
		childRun+"="+run.String(), addrEnv+"="+rdb.Options().Addr)

	var total [5]int64 // calls ok 429 other errors
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range replicas {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		wg.Go(func() {
			var line string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if s, ok := strings.CutPrefix(sc.Text(), tallyLine); ok {
					line = s
				}
			}
			err := cmd.Wait()
			assert.NoError(t, err, "child %d: %s", i, stderr.String())
			var c [5]int64
			n, _ := fmt.Sscan(line, &c[0], &c[1], &c[2], &c[3], &c[4])
			assert.Equal(t, 5, n, "child %d printed its tally", i)
			t.Logf("process %d: calls=%d ok=%d 429=%d other=%d errors=%d", i, c[0], c[1], c[2], c[3], c[4])
			assert.Equal(t, c[0], c[1]+c[2]+c[3]+c[4], "child %d: every call answered", i)
			mu.Lock()
			for j := range c {
				total[j] += c[j]
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	t.Logf("all processes: calls=%d ok=%d 429=%d other=%d errors=%d", total[0], total[1], total[2], total[3], total[4])
	checkServer(t, sim)
	assert.GreaterOrEqual(t, float64(total[1]), 0.8*limitRPS*run.Seconds(), "the shared limit is used, not wasted")
}
