package conformance_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

// Headers' doc: "On a 429 the reset is always the wait until that request
// would pass." A 429 of the token limit, under the express-rate-limit
// forms (legacy, draft-6, draft-7), reports the request limit's reset
// instead: far shorter than the wait the server enforces.
func TestTokenLimited429ResetIsTheWait(t *testing.T) {
	const body = `{"model":"` + srvChatModel + `","messages":[{"role":"user","content":"hello"}],"max_tokens":8}` // 2+8 tokens
	for _, h := range []conformance.Headers{conformance.HeaderLegacy, conformance.HeaderDraft6, conformance.HeaderDraft7} {
		t.Run(strconv.Itoa(int(h)), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cfg := srvChatLimit(conformance.Limit{RPM: 6000, TPM: 60, TokenBurst: 20})
				cfg.Headers = h | conformance.HeaderRetryAfter | conformance.HeaderNoReset
				srv := conformance.NewServer(cfg)
				for range 2 {
					require.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body).status)
				}
				now := time.Now()
				r := srvDo(t, srv, http.MethodPost, "/v1/chat/completions", "k", body)
				require.Equal(t, http.StatusTooManyRequests, r.status)
				assert.Equal(t, "10", r.header.Get("Retry-After"), "the token bucket needs 10 s")
				var reset time.Duration
				switch h {
				case conformance.HeaderLegacy:
					unix, err := strconv.ParseInt(r.header.Get("X-Ratelimit-Reset"), 10, 64)
					require.NoError(t, err)
					reset = time.Unix(unix, 0).Sub(now)
				case conformance.HeaderDraft6:
					secs, err := strconv.Atoi(r.header.Get("Ratelimit-Reset"))
					require.NoError(t, err, "header %q", r.header)
					reset = time.Duration(secs) * time.Second
				case conformance.HeaderDraft7:
					var l, rem, secs int
					_, err := fmtSscanf(r.header.Get("Ratelimit"), &l, &rem, &secs)
					require.NoError(t, err)
					reset = time.Duration(secs) * time.Second
				}
				assert.GreaterOrEqual(t, reset, 10*time.Second, "the 429's reset is the wait until the request would pass; headers %v", r.header)
			})
		})
	}
}

func fmtSscanf(s string, l, rem, secs *int) (int, error) {
	return fmt.Sscanf(s, "limit=%d, remaining=%d, reset=%d", l, rem, secs)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// "Every request is recorded as an Arrival, whatever its fate", and
// RoundTrip and ServeHTTP "decide every answer the same way": a body over
// the 32 MiB the server reads is answered 413 over HTTP, and must be so
// in memory too, and recorded either way.
func TestOversizedBodyIsAnsweredAndRecorded(t *testing.T) {
	srv := conformance.NewServer(conformance.Config{})
	const size = 32<<20 + 1

	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", io.LimitReader(zeros{}, size)))
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)

	req, err := http.NewRequest(http.MethodPost, "http://provider.test/v1/chat/completions", io.LimitReader(zeros{}, size))
	require.NoError(t, err)
	resp, err := srv.RoundTrip(req)
	if assert.NoError(t, err, "in memory as over HTTP: a 413") {
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		resp.Body.Close()
	}
	assert.Equal(t, 2, srv.Stats().Arrivals, "both recorded")
	for _, a := range srv.Arrivals() {
		assert.Equal(t, http.StatusRequestEntityTooLarge, a.Status)
		assert.Equal(t, conformance.Chat, a.Endpoint)
	}
}
