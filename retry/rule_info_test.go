package retry_test

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/retry"
	"github.com/steadyapi/steady/transport"
)

// signalReader reads each answer's signals through the request's Info, as
// a limiter under the retry decorator does. With rewrite set, it then
// changes a failed answer's x-should-retry in place, which a decorator must
// not: the rule above then tells whether the verdict came from the Info
// (the value read) or from the header again (the value written).
type signalReader struct {
	next    http.RoundTripper
	rewrite string
	infos   []*transport.Info
}

func (s *signalReader) RoundTrip(req *http.Request) (*http.Response, error) {
	return s.RoundTripInfo(req, transport.InfoOf(req))
}

func (s *signalReader) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	s.infos = append(s.infos, info)
	resp, err := transport.Forward(s.next, req, info)
	if err != nil {
		return nil, err
	}
	info.Signals(resp, time.Now())
	if s.rewrite != "" && resp.StatusCode != http.StatusOK {
		resp.Header.Set("X-Should-Retry", s.rewrite)
	}
	return resp, nil
}

func TestShouldRetryInfoTakesTheVerdictALimiterRead(t *testing.T) {
	for _, tc := range []struct {
		name        string
		inspect     bool // an Info is made above the retries
		sent, after string
		retried     bool
	}{
		// The verdict read under the rule: the 503 is not retried, though
		// its header says otherwise by the time the rule runs.
		{"read with the signals", true, "false", "true", false},
		{"read with the signals, the other way", true, "true", "false", true},
		// No Info: the header is looked up, as it is when the rule runs.
		{"no info", false, "false", "true", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				inner := play(step{status: 503, header: map[string]string{"X-Should-Retry": tc.sent}}, ok())
				reader := &signalReader{rewrite: tc.after}
				var seen []*transport.Info
				rule := func(resp *http.Response, err error, info *transport.Info) bool {
					seen = append(seen, info)
					return retry.ShouldRetryInfo(resp, err, info)
				}
				mw := []transport.Middleware{retry.New(retry.WithRand(zeroRand), retry.WithShouldRetryInfo(rule)), func(next http.RoundTripper) http.RoundTripper { reader.next = next; return reader }}
				if tc.inspect {
					mw = append([]transport.Middleware{transport.Inspect()}, mw...)
				}
				resp, err := transport.Chain(inner, mw...).RoundTrip(newRequest(t, t.Context()))
				require.NoError(t, err)
				defer resp.Body.Close()
				if tc.retried {
					assert.Equal(t, 2, inner.attempts())
				} else {
					assert.Equal(t, 1, inner.attempts())
					assert.Equal(t, 503, resp.StatusCode)
				}
				// The rule sees the Info the decorators under it were handed.
				require.NotEmpty(t, seen)
				assert.Equal(t, reader.infos[0], seen[0])
				if tc.inspect {
					require.NotNil(t, seen[0])
					assert.Equal(t, "m", seen[0].Model)
				} else {
					assert.Nil(t, seen[0])
				}
			})
		})
	}
}

func TestShouldRetryInfoWithoutAnInfoIsShouldRetry(t *testing.T) {
	for _, status := range []int{200, 400, 404, 408, 429, 500, 503, 529} {
		for _, v := range []string{"", "true", "false", "maybe"} {
			resp := &http.Response{StatusCode: status, Header: http.Header{}}
			if v != "" {
				resp.Header.Set("X-Should-Retry", v)
			}
			assert.Equal(t, retry.ShouldRetry(resp, nil), retry.ShouldRetryInfo(resp, nil, nil), "%d %q", status, v)
		}
	}
	assert.False(t, retry.ShouldRetryInfo(nil, nil, nil))
}
