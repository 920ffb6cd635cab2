package together

// WithAnswerBounds sets the figures of the cap of one embeddings answer
// (minEmbedAnswer, embedAnswerPerText) for a test, so that the test need
// not send 64 MiB.
func WithAnswerBounds(floor, perText int64) EmbedOption {
	return func(c *embedConfig) { c.answerFloor, c.answerPerText = floor, perText }
}

// EmbedAnswerLimit is the cap of the answer to a batch of n texts.
func EmbedAnswerLimit(n int) int64 { return embedAnswerLimit(minEmbedAnswer, embedAnswerPerText, n) }
