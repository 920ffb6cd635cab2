package together

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/steadyapi/steady/preset"
	"github.com/steadyapi/steady/transport"
)

// DefaultEmbedBatch is how many texts EmbedAll puts in one request: the
// guide's 20.
const DefaultEmbedBatch = 20

// DefaultEmbedConcurrency is how many requests EmbedAll keeps in flight.
// The limiter, not this number, sets the pace; it only needs to be large
// enough to cover the server's latency at the allowed rate.
const DefaultEmbedConcurrency = 32

// maxEmbedResponse bounds one embeddings answer (20 vectors of 4,096
// floats are about 2 MB of JSON).
const maxEmbedResponse = 64 << 20

// EmbedOption configures [EmbedAll]. Options not given keep the defaults
// documented with each.
type EmbedOption func(*embedConfig)

type embedConfig struct {
	batch, concurrency int
	progress           func(done, total int)
	resume             [][]float32
	checkModel         bool
	catalog            *Catalog
	base               string
	priority           int
	prioritySet        bool
}

// WithPriority sets the priority EmbedAll's requests queue at in the
// client's limiter ([transport.WithPriority]). By default they go at
// [transport.PriorityBatch], so that a chat on the same key is served
// ahead of a corpus being embedded, unless ctx already carries a priority
// of its own.
func WithPriority(p int) EmbedOption {
	return func(c *embedConfig) { c.priority, c.prioritySet = p, true }
}

// WithBatchSize sets how many texts go in one request (default
// [DefaultEmbedBatch]). n below 1 keeps the default.
func WithBatchSize(n int) EmbedOption {
	return func(c *embedConfig) {
		if n >= 1 {
			c.batch = n
		}
	}
}

// WithConcurrency sets how many requests may be in flight at once (default
// [DefaultEmbedConcurrency]). n below 1 keeps the default.
func WithConcurrency(n int) EmbedOption {
	return func(c *embedConfig) {
		if n >= 1 {
			c.concurrency = n
		}
	}
}

// WithProgress calls f after each request with the number of texts done
// (embedded or failed) and the number to do. Calls are serialised.
func WithProgress(f func(done, total int)) EmbedOption {
	return func(c *embedConfig) { c.progress = f }
}

// WithResume resumes an earlier run: only the texts whose entry in vecs is
// nil are embedded, and the result is vecs itself, filled in. After an
// [*EmbedError], passing the results back retries exactly the failed part:
//
//	vecs, err := together.EmbedAll(ctx, client, model, texts)
//	if errors.As(err, new(*together.EmbedError)) {
//		vecs, err = together.EmbedAll(ctx, client, model, texts, together.WithResume(vecs))
//	}
func WithResume(vecs [][]float32) EmbedOption { return func(c *embedConfig) { c.resume = vecs } }

// WithoutModelCheck turns off the check of the model against the catalog
// before the first request.
func WithoutModelCheck() EmbedOption { return func(c *embedConfig) { c.checkModel = false } }

// WithCatalog checks the model against cat, which keeps the list between
// calls, rather than fetching the list for this call alone.
func WithCatalog(cat *Catalog) EmbedOption { return func(c *embedConfig) { c.catalog = cat } }

// WithAPIBase sets the API root EmbedAll sends to. The default,
// [DefaultBaseURL], suits every client of [NewClient] or [NewTransport],
// which sends it to its own root (see [WithBaseURL]) through whatever wraps
// it; another client pointed elsewhere needs the root here. An empty root
// keeps the default, as [NewCatalog]'s does.
func WithAPIBase(u string) EmbedOption {
	return func(c *embedConfig) {
		if u != "" {
			c.base = u
		}
	}
}

// EmbedError reports the texts EmbedAll could not embed. The vectors of all
// the others are in the results returned with it.
type EmbedError struct {
	Failed []int // indexes into texts, ascending
	Err    error // the first failure
}

// Error counts the texts not embedded and gives the first failure.
func (e *EmbedError) Error() string {
	return fmt.Sprintf("together: %d texts not embedded: %v", len(e.Failed), e.Err)
}

// Unwrap returns the first failure, for errors.Is and errors.As.
func (e *EmbedError) Unwrap() error { return e.Err }

// EmbedAll embeds texts with model, in requests of at most 20 texts run
// concurrently through client, and returns one vector per text in the
// order of texts. The client's limiter sets the pace: there are no fixed
// sleeps, so with a client from [NewClient] the job runs at the rate the
// server allows, and its events (see [WithEvents]) report each batch. Its
// requests queue at batch priority ([WithPriority]): a query or a chat sent
// to the same model and key meanwhile is served first.
//
// Before the first request the model is checked against the catalog (see
// [Models]); an unknown model fails at once with an [*UnknownModelError]
// naming the closest known models. Every answer is checked: of model, not
// of a fallback of the client's ([WithFallback]), one vector per text,
// each at its own index, none empty, all of one length; a batch whose
// answer is not is failed, not half taken. On failure EmbedAll
// returns the vectors that succeeded (nil for the others) and an
// [*EmbedError] listing the indexes that failed: nothing is silently lost,
// and [WithResume] retries just those.
func EmbedAll(ctx context.Context, client *http.Client, model string, texts []string, opts ...EmbedOption) ([][]float32, error) {
	cfg := embedConfig{batch: DefaultEmbedBatch, concurrency: DefaultEmbedConcurrency, checkModel: true, base: DefaultBaseURL}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if client == nil {
		client = http.DefaultClient
	}
	cfg.base = strings.TrimSuffix(cfg.base, "/")
	switch _, own := transport.LookupPriority(ctx); {
	case cfg.prioritySet:
		ctx = transport.WithPriority(ctx, cfg.priority)
	case !own: // a priority the caller set, the default included, is kept
		// Nobody is waiting on a text's vector as on a chat's answer.
		ctx = transport.WithPriority(ctx, transport.PriorityBatch)
	}
	vecs := cfg.resume
	if vecs == nil {
		vecs = make([][]float32, len(texts))
	} else if len(vecs) != len(texts) {
		return vecs, fmt.Errorf("together: WithResume has %d entries for %d texts", len(vecs), len(texts))
	}

	var todo [][]int // batches of indexes still to embed
	var cur []int
	dim := 0 // the vectors' length, from those already embedded
	for i := range texts {
		if vecs[i] != nil {
			dim = len(vecs[i])
			continue
		}
		cur = append(cur, i)
		if len(cur) == cfg.batch {
			todo, cur = append(todo, cur), nil
		}
	}
	if len(cur) > 0 {
		todo = append(todo, cur)
	}
	if len(todo) == 0 {
		return vecs, nil
	}
	if cfg.checkModel {
		cat := cfg.catalog
		if cat == nil {
			cat = NewCatalog(client, cfg.base, 0)
		}
		var unknown *UnknownModelError
		if err := cat.Check(ctx, model); errors.As(err, &unknown) {
			return vecs, err
		}
		// Any other error (no catalog endpoint, a network blip) is left to
		// the requests themselves.
	}

	total := 0
	for _, b := range todo {
		total += len(b)
	}
	var (
		mu     sync.Mutex
		done   int
		failed []int
		first  error
		next   = make(chan []int)
		wg     sync.WaitGroup
	)
	finish := func(batch []int, got [][]float32, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err == nil && dim != 0 && len(got[0]) != dim {
			err = fmt.Errorf("together: embeddings answer has vectors of %d values where others have %d", len(got[0]), dim)
		}
		done += len(batch)
		if err != nil {
			failed = append(failed, batch...)
			if first == nil {
				first = err
			}
		} else {
			dim = len(got[0])
			for j, i := range batch {
				vecs[i] = got[j]
			}
		}
		if cfg.progress != nil {
			cfg.progress(done, total)
		}
	}
	for range min(cfg.concurrency, len(todo)) {
		wg.Go(func() {
			for batch := range next {
				got, err := embedBatch(ctx, client, cfg.base, model, texts, batch)
				finish(batch, got, err)
			}
		})
	}
	for _, b := range todo {
		next <- b
	}
	close(next)
	wg.Wait()
	if len(failed) > 0 {
		slices.Sort(failed)
		return vecs, &EmbedError{Failed: failed, Err: first}
	}
	return vecs, nil
}

type embedRequest struct {
	Model string   `json:"model"`
	Input []string `json:"input"`
}

type embedResponse struct {
	Data []struct {
		Index     *int   `json:"index"`
		Embedding vector `json:"embedding"`
	} `json:"data"`
	Error json.RawMessage `json:"error"`
}

// vector is an answer's embedding. A null in it (a JavaScript server's
// NaN) is an error, where json would leave a silent 0; a null vector is
// empty, and refused as such.
type vector []float32

func (v *vector) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if bytes.Contains(b, []byte("null")) {
		return errors.New("a vector holds a null value")
	}
	return json.Unmarshal(b, (*[]float32)(v))
}

// embedBatch embeds texts[idx...] and returns their vectors in the order
// of idx, all of one length, none empty, or an error.
func embedBatch(ctx context.Context, client *http.Client, base, model string, texts []string, idx []int) ([][]float32, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in := embedRequest{Model: model, Input: make([]string, len(idx))}
	for j, i := range idx {
		in.Input[j] = texts[i]
	}
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(preset.WithBatch(ctx, model, len(idx)), http.MethodPost, base+"/embeddings", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return nil, err
	}
	if served := resp.Header.Get(transport.ModelHeader); served != "" && served != model {
		// The client fell back (WithFallback): these vectors, even of the
		// same length, cannot be compared with the asked model's.
		return nil, fmt.Errorf("together: embeddings answer is of the fallback model %q, not %q", served, model)
	}
	var out embedResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxEmbedResponse)).Decode(&out); err != nil {
		return nil, fmt.Errorf("together: embeddings answer: %w", err)
	}
	if len(out.Data) == 0 && len(out.Error) > 0 && string(out.Error) != "null" {
		return nil, answerError(resp, out.Error)
	}
	if len(out.Data) != len(idx) {
		return nil, fmt.Errorf("together: embeddings answer has %d vectors for %d inputs", len(out.Data), len(idx))
	}
	got := make([][]float32, len(idx))
	for _, d := range out.Data {
		switch {
		case d.Index == nil:
			return nil, errors.New("together: embeddings answer has a vector without an index")
		case *d.Index < 0 || *d.Index >= len(idx) || got[*d.Index] != nil:
			return nil, fmt.Errorf("together: embeddings answer has a bad or repeated index %d", *d.Index)
		case len(d.Embedding) == 0:
			return nil, fmt.Errorf("together: embeddings answer has an empty vector at index %d", *d.Index)
		case len(d.Embedding) != len(out.Data[0].Embedding):
			return nil, fmt.Errorf("together: embeddings answer has vectors of %d and %d values", len(out.Data[0].Embedding), len(d.Embedding))
		}
		got[*d.Index] = []float32(d.Embedding)
	}
	return got, nil
}

// answerError is the [*APIError] of a 2xx answer whose body is an error
// ({"error": ...}) instead of vectors: parsed, and the key removed, as
// CheckResponse does for any other status, with the status it came with.
func answerError(resp *http.Response, body json.RawMessage) error {
	errResp := *resp
	errResp.StatusCode = http.StatusInternalServerError // any status CheckResponse parses
	errResp.Body = io.NopCloser(io.MultiReader(strings.NewReader(`{"error":`), bytes.NewReader(body), strings.NewReader("}")))
	err := CheckResponse(&errResp)
	if api, ok := err.(*APIError); ok {
		api.StatusCode = resp.StatusCode
	}
	return err
}
