package transport

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// endpointBySearch names a path's endpoint by searching it for each
// endpoint's marks in turn: the plain statement of the rule endpointOf
// follows in one pass.
func endpointBySearch(path string) string {
	p := strings.TrimSuffix(path, "/")
	switch {
	case strings.HasSuffix(p, "/chat/completions"):
		return EndpointChat
	case strings.HasSuffix(p, "/completions"):
		return EndpointCompletions
	case strings.HasSuffix(p, "/embeddings"):
		return EndpointEmbeddings
	case strings.Contains(p, "/images/"):
		return EndpointImages
	case strings.Contains(p, "/fine-tunes"), strings.Contains(p, "/fine_tuning/"):
		return EndpointFineTunes
	case strings.HasSuffix(p, "/batches"), strings.Contains(p, "/batches/"):
		return EndpointBatches
	case strings.HasSuffix(p, "/models"), strings.Contains(p, "/models/"):
		return EndpointModels
	case strings.HasSuffix(p, "/messages"):
		return EndpointMessages
	case strings.HasSuffix(p, "/responses"):
		return EndpointResponses
	}
	return EndpointOther
}

// endpointWords are the segments paths are made of in the tests: every
// endpoint's mark, near misses of them, and the empty segment.
var endpointWords = []string{"v1", "openai", "chat", "completions", "embeddings", "images", "generations",
	"fine-tunes", "fine-tunesx", "fine-tune", "fine_tuning", "fine_tuningx", "jobs", "batches", "batchesx",
	"models", "model", "messages", "messagesx", "responses", "count_tokens", "files", "", "x"}

// TestEndpointOfFollowsTheRule: endpointOf names every path as the rule,
// searched for mark by mark, does: paths of up to five segments from the
// endpoints' marks and their near misses, with and without a leading or
// trailing slash.
func TestEndpointOfFollowsTheRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	named := map[string]bool{}
	for range 20000 {
		var b strings.Builder
		if rng.IntN(8) > 0 {
			b.WriteByte('/')
		}
		for i := range 1 + rng.IntN(5) {
			if i > 0 {
				b.WriteByte('/')
			}
			b.WriteString(endpointWords[rng.IntN(len(endpointWords))])
		}
		if rng.IntN(4) == 0 {
			b.WriteByte('/')
		}
		p := b.String()
		want := endpointBySearch(p)
		named[want] = true
		if !assert.Equal(t, want, endpointOf(p), "%q", p) {
			return
		}
	}
	assert.Len(t, named, 10, "every endpoint, and other, came up")
}

func FuzzEndpointOf(f *testing.F) {
	for _, w := range endpointWords {
		f.Add("/v1/" + w + "/x")
	}
	f.Add("/v1/messages")
	f.Add("/v1/messages/")
	f.Fuzz(func(t *testing.T, p string) {
		assert.Equal(t, endpointBySearch(p), endpointOf(p), "%q", p)
	})
}
