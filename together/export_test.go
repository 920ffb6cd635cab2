package together

import (
	"bytes"
	"io"
	"net/http"
	"testing/iotest"
)

// WithAnswerBounds sets the figures of the cap of one embeddings answer
// (minEmbedAnswer, embedAnswerPerText) for a test, so that the test need
// not send 64 MiB.
func WithAnswerBounds(floor, perText int64) EmbedOption {
	return func(c *embedConfig) { c.answerFloor, c.answerPerText = floor, perText }
}

// EmbedAnswerLimit is the cap of the answer to a batch of n texts.
func EmbedAnswerLimit(n int) int64 { return embedAnswerLimit(minEmbedAnswer, embedAnswerPerText, n) }

// CountBatch is what the batch guard counts of body, read through a
// GetBody that gives a byte a Read.
func CountBatch(body []byte) int {
	req, _ := http.NewRequest(http.MethodPost, "http://batch.test/v1/batches", bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(iotest.OneByteReader(bytes.NewReader(body))), nil
	}
	return countBatch(req)
}
