package conformance_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/conformance"
)

type srvJob struct {
	ID            string `json:"id"`
	Object        string `json:"object"`
	Status        string `json:"status"`
	RequestCounts struct {
		Total     int `json:"total"`
		Completed int `json:"completed"`
	} `json:"request_counts"`
}

func srvJobList(t *testing.T, rt http.RoundTripper, path, key string) []srvJob {
	t.Helper()
	r := srvDo(t, rt, http.MethodGet, path, key, "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	var list struct {
		Object string   `json:"object"`
		Data   []srvJob `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &list), r.body)
	assert.Equal(t, "list", list.Object)
	return list.Data
}

func TestServerFineTunes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := conformance.NewServer(conformance.Config{FineTuneDuration: 10 * time.Minute})
		const body = `{"model":"` + srvChatModel + `","training_file":"file-1"}`
		var first srvJob
		for i := range 3 {
			r := srvDo(t, srv, http.MethodPost, "/v1/fine-tunes", "k", body)
			require.Equal(t, http.StatusOK, r.status, r.body)
			if i == 0 {
				require.NoError(t, json.Unmarshal([]byte(r.body), &first))
			}
			time.Sleep(time.Minute)
		}
		assert.Equal(t, "running", first.Status)
		assert.Equal(t, "fine-tune", first.Object)

		r := srvDo(t, srv, http.MethodPost, "/v1/fine-tunes", "k", body)
		assert.Equal(t, http.StatusConflict, r.status, "a 4th running job")
		assert.Equal(t, "invalid_request_error", srvErrorType(t, r.body))
		assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/fine-tunes", "other", body).status, "per key")

		time.Sleep(7 * time.Minute) // the first job ends at 10m
		jobs := srvJobList(t, srv, "/v1/fine-tunes", "k")
		require.Len(t, jobs, 3)
		assert.Equal(t, []string{"completed", "running", "running"}, []string{jobs[0].Status, jobs[1].Status, jobs[2].Status})
		assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/fine-tunes", "k", body).status, "a slot is free")
		assert.Equal(t, http.StatusConflict, srvDo(t, srv, http.MethodPost, "/v1/fine-tunes", "k", body).status)

		r = srvDo(t, srv, http.MethodGet, "/v1/fine-tunes/"+first.ID, "k", "")
		require.Equal(t, http.StatusOK, r.status)
		assert.Contains(t, r.body, `"status":"completed"`)
		assert.Equal(t, http.StatusNotFound, srvDo(t, srv, http.MethodGet, "/v1/fine-tunes/"+first.ID, "other", "").status,
			"another key's job is not found")
	})
}

func TestServerBatches(t *testing.T) {
	requests := func(n int) string {
		return `{"requests":[` + strings.TrimSuffix(strings.Repeat(`{"custom_id":"x"},`, n), ",") + `]}`
	}
	lines := func(n int) string {
		b, _ := json.Marshal(map[string]string{"input": strings.Repeat(`{"custom_id":"x"}`+"\n", n)})
		return string(b)
	}
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"100 requests", requests(100), http.StatusOK},
		{"101 requests", requests(101), http.StatusBadRequest},
		{"100 lines", lines(100), http.StatusOK},
		{"101 lines", lines(101), http.StatusBadRequest},
		{"empty", `{"requests":[]}`, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := conformance.NewServer(conformance.Config{})
				r := srvDo(t, srv, http.MethodPost, "/v1/batches", "k", tt.body)
				assert.Equal(t, tt.status, r.status, r.body)
			})
		})
	}

	t.Run("in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			srv := conformance.NewServer(conformance.Config{BatchDuration: time.Hour})
			for i := range 10 {
				r := srvDo(t, srv, http.MethodPost, "/v1/batches", "k", requests(5))
				require.Equal(t, http.StatusOK, r.status, "batch %d: %s", i, r.body)
				time.Sleep(time.Minute)
			}
			r := srvDo(t, srv, http.MethodPost, "/v1/batches", "k", requests(5))
			require.Equal(t, http.StatusTooManyRequests, r.status, "an 11th batch in flight")
			assert.Equal(t, conformance.ErrorRequestLimited, srvErrorType(t, r.body))
			assert.Equal(t, fmt.Sprint((50 * time.Minute).Seconds()), r.header.Get("X-Ratelimit-Reset"), "until the first completes")

			time.Sleep(50 * time.Minute)
			batches := srvJobList(t, srv, "/v1/batches", "k")
			require.Len(t, batches, 10)
			assert.Equal(t, "completed", batches[0].Status)
			assert.Equal(t, 5, batches[0].RequestCounts.Completed)
			assert.Equal(t, "in_progress", batches[1].Status)
			assert.Equal(t, 0, batches[1].RequestCounts.Completed)
			assert.Equal(t, 5, batches[1].RequestCounts.Total)
			assert.Equal(t, http.StatusOK, srvDo(t, srv, http.MethodPost, "/v1/batches", "k", requests(5)).status)
		})
	})
}
