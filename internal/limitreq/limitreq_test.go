package limitreq

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func status(t *testing.T, s *Server) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://limitreq.test/", http.NoBody)
	require.NoError(t, err)
	resp, err := s.RoundTrip(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp.StatusCode
}

func TestTheZoneRefusesWhatLimitReqRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(10, 0, 1)
		assert.Equal(t, http.StatusOK, status(t, s))
		assert.Equal(t, http.StatusTooManyRequests, status(t, s), "no burst: a second request within 100 ms")
		time.Sleep(100 * time.Millisecond)
		assert.Equal(t, http.StatusOK, status(t, s), "100 ms on, the next is accepted")

		b := New(10, 2, 1)
		for i := range 3 {
			assert.Equal(t, http.StatusOK, status(t, b), "the burst of 2 and the first: request %d", i)
		}
		assert.Equal(t, http.StatusTooManyRequests, status(t, b))
		arrivals, refused := b.Counts()
		assert.Equal(t, 4, arrivals)
		assert.Equal(t, 1, refused)
	})
}

func TestLeast(t *testing.T) {
	assert.Equal(t, 39*time.Second+900*time.Millisecond, Least(400, 10, 0))
	assert.Equal(t, 38*time.Second+900*time.Millisecond, Least(400, 10, 10))
	assert.Equal(t, time.Duration(0), Least(5, 10, 10))
}
