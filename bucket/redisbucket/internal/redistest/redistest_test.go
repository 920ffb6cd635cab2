package redistest_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/steadyapi/steady/bucket/redisbucket/internal/redistest"
)

// TestClient connects to the server AddrEnv names and pings it: in CI, with
// .ci/run's server, it must connect; elsewhere it skips without one.
func TestClient(t *testing.T) {
	c := redistest.Client(t)
	assert.NoError(t, c.Ping(context.Background()).Err())
	assert.Equal(t, os.Getenv(redistest.AddrEnv), c.Options().Addr)
}
