package transport_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/steadyapi/steady/transport"
)

func TestPriorityTravelsInTheContext(t *testing.T) {
	assert.Equal(t, transport.PriorityDefault, transport.PriorityOf(context.Background()))
	assert.Zero(t, transport.PriorityDefault, "a request without a priority is in the middle")
	assert.Greater(t, transport.PriorityInteractive, transport.PriorityDefault)
	assert.Less(t, transport.PriorityBatch, transport.PriorityDefault)

	ctx := transport.WithPriority(context.Background(), transport.PriorityBatch)
	assert.Equal(t, transport.PriorityBatch, transport.PriorityOf(ctx))
	type other struct{}
	inner := context.WithValue(ctx, other{}, "x")
	assert.Equal(t, transport.PriorityBatch, transport.PriorityOf(inner), "values set below it do not hide it")
	assert.Equal(t, 150, transport.PriorityOf(transport.WithPriority(inner, 150)), "the nearest one counts")
	assert.Equal(t, transport.PriorityBatch, transport.PriorityOf(ctx), "the parent keeps its own")

	// A priority set to the default is set: a helper with a level of its
	// own keeps it.
	p, ok := transport.LookupPriority(context.Background())
	assert.False(t, ok)
	assert.Equal(t, transport.PriorityDefault, p)
	p, ok = transport.LookupPriority(transport.WithPriority(ctx, transport.PriorityDefault))
	assert.True(t, ok)
	assert.Equal(t, transport.PriorityDefault, p)
	p, ok = transport.LookupPriority(inner)
	assert.True(t, ok)
	assert.Equal(t, transport.PriorityBatch, p)

	// A request made with the context carries it to every decorator, and
	// so do the clones a retry makes.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.together.xyz/v1/embeddings", http.NoBody)
	require.NoError(t, err)
	assert.Equal(t, transport.PriorityBatch, transport.PriorityOf(req.Clone(req.Context()).Context()))
}

// A nightly job marks its requests as batch work, so that a limiter they
// share with a chatbot serves the chatbot's users first.
func ExampleWithPriority() {
	ctx := transport.WithPriority(context.Background(), transport.PriorityBatch)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://api.together.xyz/v1/embeddings", http.NoBody)
	if err != nil {
		panic(err)
	}
	fmt.Println(transport.PriorityOf(req.Context()), transport.PriorityOf(context.Background()))
	// Output: -100 0
}

// BenchmarkPriorityOf reads a priority that was never set, from a request's
// context a few values deep, as a limiter that queues a request does.
func BenchmarkPriorityOf(b *testing.B) {
	type k1 struct{}
	type k2 struct{}
	ctx, cancel := context.WithCancel(context.WithValue(context.WithValue(context.Background(), k1{}, 1), k2{}, 2))
	defer cancel()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += transport.PriorityOf(ctx)
	}
	if n != 0 {
		b.Fatal(n)
	}
}
