package conformance_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

const srvOtherModel = "mistralai/Mixtral-8x7B-Instruct-v0.1"

func srvOtherChat(t testing.TB, rt http.RoundTripper) srvReply {
	t.Helper()
	return srvDo(t, rt, http.MethodPost, "/v1/chat/completions", "k", `{"model":"`+srvOtherModel+`","messages":[]}`)
}

func TestFaultStatusWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Model: srvChatModel, From: time.Minute, Until: 2 * time.Minute},
		}})
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "before the window")
		time.Sleep(time.Minute)
		r := srvChat(t, srv, "k")
		assert.Equal(t, http.StatusServiceUnavailable, r.status, "Status 0 means 503")
		assert.Equal(t, "server_error", srvErrorType(t, r.body))
		assert.Equal(t, http.StatusOK, srvOtherChat(t, srv).status, "another model is served")
		time.Sleep(time.Minute - time.Nanosecond)
		assert.Equal(t, http.StatusServiceUnavailable, srvChat(t, srv, "k").status, "still inside")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status, "Until is exclusive")
		assert.Equal(t, conformance.Stats{Arrivals: 5, OK: 3, ServerErrors: 2}, srv.Stats())
	})
}

func TestFaultEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{
			{Kind: conformance.FaultStatus, Status: 502, Endpoint: conformance.Embeddings},
		}})
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
		r := srvDo(t, srv, http.MethodPost, "/v1/embeddings", "k", `{"model":"`+srvEmbedModel+`","input":"x"}`)
		assert.Equal(t, http.StatusBadGateway, r.status)
	})
}

// A share of requests fails, the same ones under the same seed.
func TestFaultShareSeeded(t *testing.T) {
	run := func(seed int64) []int {
		var statuses []int
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(conformance.Config{
				Seed:          seed,
				LatencyJitter: 10 * time.Millisecond,
				Faults: []conformance.Fault{
					{Kind: conformance.FaultStatus, Status: 500, Share: 0.2},
					{Kind: conformance.FaultStatus, Status: 502, Share: 0.1},
				},
			})
			for range 1000 {
				statuses = append(statuses, srvChat(t, srv, "k").status)
			}
		})
		return statuses
	}
	a, b, c := run(1), run(1), run(2)
	assert.Equal(t, a, b, "the same seed, the same faults")
	assert.NotEqual(t, a, c, "another seed, other faults")
	count := map[int]int{}
	for _, s := range a {
		count[s]++
	}
	assert.InDelta(t, 200, count[500], 40, "a share of 0.2")
	assert.InDelta(t, 80, count[502], 30, "0.1 of the 0.8 left")
	assert.Equal(t, 1000, count[200]+count[500]+count[502])
}

func TestFaultReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultReset, Until: time.Second}}})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.Nil(t, resp)
		require.Error(t, err)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.ErrorIs(t, err, conformance.ErrReset)
		time.Sleep(time.Second)
		assert.Equal(t, http.StatusOK, srvChat(t, srv, "k").status)
		arr := srv.Arrivals()
		require.Len(t, arr, 2)
		assert.Zero(t, arr[0].Status, "a reset has no status")
		assert.Equal(t, conformance.Stats{Arrivals: 2, OK: 1, Other: 1}, srv.Stats())
	})
}

func TestFaultHang(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultHang}}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		start := time.Now()
		resp, err := srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Hour, time.Since(start), "no answer until the deadline")

		ctx, cancel = context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Minute)
			cancel()
		}()
		_, err = srvSend(ctx, srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, conformance.Stats{Arrivals: 2, Other: 2}, srv.Stats())
	})
}

func TestFaultTruncate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Faults: []conformance.Fault{{Kind: conformance.FaultTruncate}}})
		resp, err := srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k", srvChatBody)
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Equal(t, resp.ContentLength/2, int64(len(b)), "half the announced body")
		assert.False(t, json.Valid(b))

		// A truncated stream stops short of [DONE].
		resp, err = srvSend(context.Background(), srv, http.MethodPost, "/v1/chat/completions", "k",
			`{"model":"`+srvChatModel+`","stream":true,"messages":[]}`)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err = io.ReadAll(resp.Body)
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
		assert.Contains(t, string(b), "data: {")
		assert.NotContains(t, string(b), "[DONE]")
	})
}

func TestFaultLatencyJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{Latency: 100 * time.Millisecond, LatencyJitter: 50 * time.Millisecond, Seed: 7})
		seen := map[time.Duration]bool{}
		for range 50 {
			start := time.Now()
			srvChat(t, srv, "k")
			d := time.Since(start)
			assert.GreaterOrEqual(t, d, 100*time.Millisecond)
			assert.Less(t, d, 150*time.Millisecond)
			seen[d] = true
		}
		assert.Greater(t, len(seen), 40, "jittered")

		// A 429 does not wait: the gateway answers it.
		lim := conformance.NewServer(conformance.Config{
			Latency: time.Second,
			Limits:  map[string]conformance.Limit{conformance.Chat: {RPM: 30}},
		})
		srvChat(t, lim, "k") // a second of latency, of the two the next request must wait
		start := time.Now()
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, lim, "k").status)
		assert.Zero(t, time.Since(start))
	})
}

// A fault never hides a 429: the limit is checked first.
func TestFaultAfterLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := srvChatLimit(conformance.Limit{RPM: 60})
		cfg.Faults = []conformance.Fault{{Kind: conformance.FaultStatus, Status: 500}}
		srv := conformance.NewServer(cfg)
		assert.Equal(t, 500, srvChat(t, srv, "k").status)
		assert.Equal(t, http.StatusTooManyRequests, srvChat(t, srv, "k").status, "the 500 spent the second's request")
		assert.ErrorIs(t, error(conformance.ErrReset), syscall.ECONNRESET)
	})
}
