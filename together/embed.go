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

// EmbedOption configures [EmbedAll].
type EmbedOption func(*embedConfig)

type embedConfig struct {
	batch, concurrency int
	progress           func(done, total int)
	into               [][]float32
	checkModel         bool
	baseURL            string
}

// EmbedBatchSize sets how many texts go in one request (default 20).
func EmbedBatchSize(n int) EmbedOption { return func(c *embedConfig) { c.batch = n } }

// EmbedConcurrency sets how many requests may be in flight at once (default
// 32).
func EmbedConcurrency(n int) EmbedOption { return func(c *embedConfig) { c.concurrency = n } }

// EmbedProgress calls f after each request with the number of texts done
// (embedded or failed) and the number to do. Calls are serialised.
func EmbedProgress(f func(done, total int)) EmbedOption {
	return func(c *embedConfig) { c.progress = f }
}

// EmbedInto resumes an earlier run: only the texts whose entry in vecs is
// nil are embedded, and the result is vecs itself, filled in. After an
// [*EmbedError], passing the results back retries exactly the failed part:
//
//	vecs, err := together.EmbedAll(ctx, client, model, texts)
//	if errors.As(err, new(*together.EmbedError)) {
//		vecs, err = together.EmbedAll(ctx, client, model, texts, together.EmbedInto(vecs))
//	}
func EmbedInto(vecs [][]float32) EmbedOption { return func(c *embedConfig) { c.into = vecs } }

// EmbedSkipModelCheck turns off the check of the model against the catalog
// before the first request.
func EmbedSkipModelCheck() EmbedOption { return func(c *embedConfig) { c.checkModel = false } }

// EmbedBaseURL sets the API's base URL for this call (default: the
// client's, see [BaseURL]).
func EmbedBaseURL(u string) EmbedOption { return func(c *embedConfig) { c.baseURL = u } }

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
// server allows.
//
// Before the first request the model is checked against the catalog (see
// [Models]); an unknown model fails at once with an [*UnknownModelError]
// naming the closest known models. On failure EmbedAll returns the vectors
// that succeeded (nil for the others) and an [*EmbedError] listing the
// indexes that failed: nothing is silently lost, and [EmbedInto] retries
// just those.
func EmbedAll(ctx context.Context, client *http.Client, model string, texts []string, opts ...EmbedOption) ([][]float32, error) {
	cfg := embedConfig{batch: DefaultEmbedBatch, concurrency: DefaultEmbedConcurrency, checkModel: true}
	for _, o := range opts {
		o(&cfg)
	}
	if client == nil {
		client = http.DefaultClient
	}
	if cfg.batch <= 0 {
		cfg.batch = DefaultEmbedBatch
	}
	if cfg.concurrency <= 0 {
		cfg.concurrency = DefaultEmbedConcurrency
	}
	if cfg.baseURL == "" {
		cfg.baseURL = BaseURL(client)
	}
	cfg.baseURL = strings.TrimSuffix(cfg.baseURL, "/")
	vecs := cfg.into
	if vecs == nil {
		vecs = make([][]float32, len(texts))
	} else if len(vecs) != len(texts) {
		return vecs, fmt.Errorf("together: EmbedInto has %d entries for %d texts", len(vecs), len(texts))
	}

	var todo [][]int // batches of indexes still to embed
	var cur []int
	for i := range texts {
		if vecs[i] != nil {
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
		var unknown *UnknownModelError
		if err := catalogFor(client).Check(ctx, model); errors.As(err, &unknown) {
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
	finish := func(batch []int, err error) {
		mu.Lock()
		defer mu.Unlock()
		done += len(batch)
		if err != nil {
			failed = append(failed, batch...)
			if first == nil {
				first = err
			}
		}
		if cfg.progress != nil {
			cfg.progress(done, total)
		}
	}
	for range min(cfg.concurrency, len(todo)) {
		wg.Go(func() {
			for batch := range next {
				finish(batch, embedBatch(ctx, client, cfg.baseURL, model, texts, batch, vecs))
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
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// embedBatch embeds texts[idx...] into vecs[idx...]. Each call writes only
// its own indexes, so batches run concurrently without a lock on vecs.
func embedBatch(ctx context.Context, client *http.Client, baseURL, model string, texts []string, idx []int, vecs [][]float32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in := embedRequest{Model: model, Input: make([]string, len(idx))}
	for j, i := range idx {
		in.Input[j] = texts[i]
	}
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/embeddings", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return err
	}
	var out embedResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxEmbedResponse)).Decode(&out); err != nil {
		return fmt.Errorf("together: embeddings answer: %w", err)
	}
	if len(out.Data) != len(idx) {
		return fmt.Errorf("together: embeddings answer has %d vectors for %d inputs", len(out.Data), len(idx))
	}
	got := make([][]float32, len(idx))
	for _, d := range out.Data {
		if d.Index < 0 || d.Index >= len(idx) || got[d.Index] != nil || d.Embedding == nil {
			return fmt.Errorf("together: embeddings answer has a bad or repeated index %d", d.Index)
		}
		got[d.Index] = d.Embedding
	}
	for j, i := range idx {
		vecs[i] = got[j]
	}
	return nil
}
