package together

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/steadyapi/steady/transport"
)

// MaxBatchRequests is the most requests Together accepts in one batch.
const MaxBatchRequests = 100

// BatchTooLargeError is returned, before anything is sent, for a batch of
// more than [MaxBatchRequests] requests.
type BatchTooLargeError struct {
	Requests int // the requests of the batch refused
}

// Error says how many requests the batch has and how many fit.
func (e *BatchTooLargeError) Error() string {
	return fmt.Sprintf("together: a batch holds at most %d requests; this one has %d: split it", MaxBatchRequests, e.Requests)
}

// batchGuard refuses a batch over MaxBatchRequests before it is sent. It
// counts the requests of a JSON body's "requests" array, or the lines of
// its "input" (JSONL); any other body is passed on for the server to judge.
func batchGuard(next http.RoundTripper) http.RoundTripper {
	return transport.Func(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodPost || req.Body == nil || req.Body == http.NoBody {
			return next.RoundTrip(req)
		}
		var r transport.Replay
		if err := r.Reset(req, 0); err != nil {
			return nil, err
		}
		send, err := r.Request()
		if err != nil {
			return nil, err
		}
		if n := countBatch(send); n > MaxBatchRequests {
			if send.Body != nil {
				send.Body.Close()
			}
			return nil, &BatchTooLargeError{Requests: n}
		}
		// countBatch read a copy (GetBody): send's body is whole.
		return next.RoundTrip(send)
	})
}

func countBatch(req *http.Request) int {
	if req.GetBody == nil {
		return 0
	}
	rc, err := req.GetBody()
	if err != nil {
		return 0
	}
	defer rc.Close()
	var body struct {
		Requests []json.RawMessage `json:"requests"`
		Input    string            `json:"input"`
	}
	if json.NewDecoder(io.LimitReader(rc, transport.DefaultReplayLimit)).Decode(&body) != nil {
		return 0
	}
	if body.Requests != nil {
		return len(body.Requests)
	}
	n := 0
	for _, line := range bytes.Split([]byte(body.Input), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 {
			n++
		}
	}
	return n
}
