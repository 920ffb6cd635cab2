package limitreq

import (
	"math/rand/v2"
	"net/http"
	"slices"
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

func TestAStallHoldsWhatReachesTheZoneUntilItEnds(t *testing.T) {
	// Stalls of 2 ms exactly, 10 ms apart on average: a sixth of the time.
	s := stalls{rng: rand.New(rand.NewPCG(1, 2)), kinds: []Stall{{Every: 10 * time.Millisecond, Least: 2 * time.Millisecond}}}
	held := 0
	const n = 100000
	for i := range n {
		at := time.Duration(i) * 997 * time.Microsecond
		wake := s.wake(at)
		require.GreaterOrEqual(t, wake, at)
		require.LessOrEqual(t, wake-at, 2*time.Millisecond)
		if wake > at {
			held++
		}
	}
	assert.InDelta(t, 1.0/6, float64(held)/n, 0.01)
}

// TestLoadedDrawsWhatWasMeasured holds Loaded to the figures it was
// calibrated on: how long after their timer was due paced requests reached
// nginx's clock.
func TestLoadedDrawsWhatWasMeasured(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	s := stalls{rng: rand.New(rand.NewPCG(3, 11)), kinds: Loaded.Stalls}
	const n = 400000
	var late []time.Duration
	for i := range n {
		due := time.Duration(i) * 25 * time.Millisecond
		late = append(late, s.wake(due+Loaded.Arrive(r))-due)
	}
	slices.Sort(late)
	over := func(d time.Duration) float64 {
		i, _ := slices.BinarySearch(late, d)
		return float64(n-i) / n
	}
	assert.InDelta(t, 0.7, late[n/2].Seconds()*1000, 0.1, "the median, in ms")
	assert.InDelta(t, 0.0055, over(2*time.Millisecond), 0.0015)
	assert.InDelta(t, 0.0012, over(5*time.Millisecond), 0.0006)
	assert.Greater(t, late[n-1], 15*time.Millisecond, "a long stall now and then")
}

func TestConnectHoldsTheFirstRequestOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := Model{
			Arrive:  func(*rand.Rand) time.Duration { return time.Millisecond },
			Connect: func(*rand.Rand) time.Duration { return 5 * time.Millisecond },
		}
		s := NewModel(10, 0, 1, m)
		start := time.Now()
		for i := range 3 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * 100 * time.Millisecond)))
			status(t, s)
		}
		log := s.Log()
		require.Len(t, log, 3)
		assert.Equal(t, []Arrival{
			{At: 6 * time.Millisecond},
			{At: 101 * time.Millisecond, Refused: true}, // 95 ms after the first
			{At: 201 * time.Millisecond},
		}, log, "the first request 5 ms later than the others")
	})
}
