package together

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

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

// The cap of one embeddings answer is the larger of minEmbedAnswer and
// embedAnswerPerText for each text of the batch (see [WithBatchSize]). A
// vector of 4,096 values is about 88 KB of JSON as Together writes it
// (about 21.5 bytes a value: each float32 written as the float64 it widens
// to), so 20 of them are under 2 MB and 64 MiB holds about 760; 256 KiB a
// text holds a vector of about 12,000 such values, or one of 4,096 written
// indented.
const (
	minEmbedAnswer     = 64 << 20
	embedAnswerPerText = 256 << 10
)

// embedAnswerLimit is the cap of the answer to a batch of n texts: the
// larger of floor and perText × n, without overflow.
func embedAnswerLimit(floor, perText int64, n int) int64 {
	if perText > 0 && int64(n) > math.MaxInt64/perText {
		return math.MaxInt64
	}
	return max(floor, perText*int64(n))
}

// modelCheckWait is the longest EmbedAll waits for the catalog to check
// the model: past it, the run goes on unchecked.
const modelCheckWait = 10 * time.Second

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
	answerFloor        int64 // minEmbedAnswer but in tests
	answerPerText      int64 // embedAnswerPerText but in tests
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
//
// The answer to one request is read, and held in memory, up to a cap:
// 64 MiB, or 256 KiB a text when that is more (a batch of more than 256
// texts). A vector of 4,096 values is about 88 KB of JSON, so any batch of
// such vectors fits, a thousand (84 MiB) among them. An answer past its
// cap fails its batch with an [*EmbedAnswerTooLargeError], and EmbedAll
// sends no batch after it (those already sent are read as usual): each
// would be answered, and billed, past the cap too. A smaller n leaves more
// room a text (64 MiB / n, up to 256 texts).
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

// WithProgress calls f after each request that ends texts with the number
// of texts done (embedded or failed) and the number to do; a request
// refused and split (see [EmbedAll]) ends none, and calls f once its
// halves do. Calls are serialised.
func WithProgress(f func(done, total int)) EmbedOption {
	return func(c *embedConfig) { c.progress = f }
}

// WithResume resumes an earlier run: only the texts whose entry in vecs is
// nil are embedded, and the result is vecs itself, filled in. After an
// [*EmbedError], passing the results back retries exactly the failed part,
// the texts the server refused on their own ([EmbedError.Refused]) among
// them: fix or drop those first, or they are refused again.
// After an [*EmbedAnswerTooLargeError], the texts of the batch answered
// past its cap were billed though their vectors were not read: resume with
// a smaller [WithBatchSize], or they are answered past the cap, and
// billed, again.
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
	// Refused is the texts the server refused on their own (see
	// [EmbedAll]): each is in Failed too, with the server's reason. The
	// order is ascending by index.
	Refused []*TextRefusedError
	// Err is the first failure, or the failure that stopped the run
	// rather than any other (an [*EmbedAnswerTooLargeError], or an
	// [*APIError] that refused the key or the model): it is what a resume
	// must change ([WithBatchSize], the key, the model) not to fail again.
	// A text the server refused on its own is a [*TextRefusedError].
	Err error
}

// maxRefusedNamed is how many indexes of refused texts EmbedError's
// message lists; the rest are counted.
const maxRefusedNamed = 10

// Error counts the texts not embedded and gives the first failure, and
// names the texts the server refused on their own when there are several.
func (e *EmbedError) Error() string {
	msg := fmt.Sprintf("together: %d texts not embedded: %v", len(e.Failed), e.Err)
	if len(e.Refused) < 2 {
		return msg
	}
	var b strings.Builder
	b.WriteString(msg)
	b.WriteString("; texts refused: ")
	for i, r := range e.Refused[:min(len(e.Refused), maxRefusedNamed)] {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, r.Index)
	}
	if n := len(e.Refused) - maxRefusedNamed; n > 0 {
		fmt.Fprintf(&b, " and %d more", n)
	}
	return b.String()
}

// Unwrap returns the first failure, for errors.Is and errors.As.
func (e *EmbedError) Unwrap() error { return e.Err }

// TextRefusedError is the server's refusal of one text: a request holding
// only that text was refused for what it sent (400, 413 or 422), an input
// longer than the model takes or an empty one, say. EmbedAll isolates such
// a text by splitting the batch refused (see [EmbedAll]), and embeds the
// others.
type TextRefusedError struct {
	Index int   // the text's index in texts
	Err   error // the server's answer, an [*APIError]
}

// Error names the text and gives the server's answer.
func (e *TextRefusedError) Error() string {
	return fmt.Sprintf("together: text %d refused: %v", e.Index, e.Err)
}

// Unwrap returns the server's answer, for errors.Is and errors.As.
func (e *TextRefusedError) Unwrap() error { return e.Err }

// EmbedAnswerTooLargeError is the failure of a batch whose answer was
// larger than its cap (see [WithBatchSize]). The server did the work, and
// billed it, but its answer was not read past the cap, and is not asked
// again: nothing retries the error (it is not a cut answer, and matches
// neither [io.ErrUnexpectedEOF] nor any connection failure), and EmbedAll
// sends no batch after it, failing their texts with this error. A smaller
// WithBatchSize leaves each text more room.
type EmbedAnswerTooLargeError struct {
	Texts int   // the texts of the batch
	Limit int64 // the cap of its answer, in bytes

	floor, perText int64 // the figures of the cap
}

// Error gives the batch's size, its cap and how the cap is set, and names
// WithBatchSize.
func (e *EmbedAnswerTooLargeError) Error() string {
	return fmt.Sprintf("together: embeddings answer to a batch of %d texts is over its cap of %s (the larger of %s and %s a text) and was not read: lower WithBatchSize (up to %d texts share %s)",
		e.Texts, byteSize(e.Limit), byteSize(e.floor), byteSize(e.perText), e.floor/max(e.perText, 1), byteSize(e.floor))
}

// byteSize writes n bytes in MiB, KiB or bytes.
func byteSize(n int64) string {
	unit := func(size int64, name string) string {
		if n%size == 0 {
			return fmt.Sprintf("%d %s", n/size, name)
		}
		return fmt.Sprintf("%.1f %s", float64(n)/float64(size), name)
	}
	switch {
	case n >= 1<<20:
		return unit(1<<20, "MiB")
	case n >= 1<<10:
		return unit(1<<10, "KiB")
	}
	return fmt.Sprintf("%d bytes", n)
}

// capReader reads an answer up to its cap, and fails with err past it.
type capReader struct {
	r    io.Reader
	left int64 // the bytes still allowed
	err  error
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left+1] // one byte past the cap tells a body over it from one at it
	}
	n, err := c.r.Read(p)
	if int64(n) > c.left {
		n, c.left = int(c.left), -1
		return n, c.err
	}
	c.left -= int64(n)
	return n, err
}

// EmbedAll embeds texts with model, in requests of at most
// [DefaultEmbedBatch] texts ([WithBatchSize]) run concurrently through client, and returns one vector per text in the
// order of texts. The client's limiter sets the pace: there are no fixed
// sleeps, so with a client from [NewClient] the job runs at the rate the
// server allows, and its events (see [WithEvents]) report each batch. Its
// requests queue at batch priority ([WithPriority]): a query or a chat sent
// to the same model and key meanwhile is served first.
//
// Before the first request the model is checked against the catalog (see
// [Models]); an unknown model fails at once with an [*UnknownModelError]
// naming the closest known models; a catalog that cannot be had (an
// error, or no answer within 10 seconds) leaves the model unchecked.
// Its requests do not fall back ([transport.WithoutFallback]): another
// model's vectors cannot be compared with model's, and would be paid for
// and thrown away; a batch the model cannot serve fails with the model's
// own answer, for [WithResume] to send again. Every answer is checked: of
// model (not of another, as a proxy may mix them up), one vector per text,
// each at its own index, none empty, all of one length; a batch whose
// answer is not is failed, not half taken. An answer is read up to a cap
// that grows with the batch ([WithBatchSize]); past it, the batch fails
// with an [*EmbedAnswerTooLargeError] and no batch is sent after it, nor
// after an answer that every batch would get too: the key refused
// ([ErrUnauthorized]), its spending limit or quota reached
// ([ErrSpendingLimit]), the model unknown ([ErrModelNotFound]). On
// failure EmbedAll returns the vectors that succeeded (nil for the others)
// and an [*EmbedError] listing the indexes that failed: nothing is
// silently lost, and [WithResume] retries just those.
//
// One text the server refuses does not cost its batch. A batch of several
// texts refused for what it sent (a 400, 413 or 422: an input longer than
// the model takes, an empty one) is split in halves and each half sent
// again, and so on, so that a refused text ends alone in its request, in
// about log2 of the batch size halvings (2 requests each: at most 10 for a
// batch of 20), while the texts of the halves that are accepted are
// embedded. A refused request embeds, and bills, nothing, so no text is
// embedded twice. The text alone refused is named in the [*EmbedError]'s
// Refused, a [*TextRefusedError] with its index and the server's
// [*APIError]. The extra requests are bounded: as many as the run has
// batches, plus what isolating two texts of one batch takes (20 for
// batches of 20); past that, a refused batch fails whole with the
// server's answer, so a server that refuses every request costs a run of
// many batches about twice its requests, and a run of one batch 21.
// Failures no half would escape are not split:
// those that stop the run (above), a 429 or a 5xx (the client retries
// them), an answer that cannot be read.
func EmbedAll(ctx context.Context, client *http.Client, model string, texts []string, opts ...EmbedOption) ([][]float32, error) {
	cfg := embedConfig{batch: DefaultEmbedBatch, concurrency: DefaultEmbedConcurrency, checkModel: true, base: DefaultBaseURL,
		answerFloor: minEmbedAnswer, answerPerText: embedAnswerPerText}
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
		// The check is a courtesy: a catalog that does not answer within
		// modelCheckWait is not waited for past it, at the cost of the
		// caller's deadline and every text.
		cctx, cancel := context.WithTimeout(ctx, modelCheckWait)
		err := cat.Check(cctx, model)
		cancel()
		var unknown *UnknownModelError
		if errors.As(err, &unknown) {
			return vecs, err
		}
		// Any other error (no catalog endpoint, a network blip, a catalog
		// too slow) is left to the requests themselves.
	}

	total := 0
	for _, b := range todo {
		total += len(b)
	}
	var (
		mu      sync.Mutex
		wake    = sync.NewCond(&mu)
		queue   = todo // batches to send; the halves of a refused batch go first
		busy    int    // batches being sent
		done    int
		failed  []int
		refused []*TextRefusedError
		first   error
		stop    error // an answer past its cap, or one no batch escapes: send nothing more
		// splits is what is left of the requests allowed beyond one a
		// batch, to isolate the texts the server refuses: as many again
		// as there are batches, plus what isolating two texts of a batch
		// takes (two requests a halving, log2(batch) halvings a text).
		splits = len(todo) + 2*2*bits.Len(uint(cfg.batch-1))
		wg     sync.WaitGroup
	)
	finish := func(batch []int, got [][]float32, err error) {
		mu.Lock()
		defer mu.Unlock()
		busy--
		defer wake.Broadcast()
		if err == nil && dim != 0 && len(got[0]) != dim {
			err = fmt.Errorf("together: embeddings answer has vectors of %d values where others have %d", len(got[0]), dim)
		}
		if err != nil && len(batch) > 1 && splits >= 2 && stop == nil && refusesContent(err) {
			// One text may be what the server refused: each half is sent
			// again, and the half that holds it refused again, so that the
			// text is alone after log2(len(batch)) halvings, the others
			// embedded. The refused request embedded nothing, and billed
			// nothing, so no text is embedded twice.
			splits -= 2
			h := len(batch) / 2
			queue = append([][]int{batch[:h:h], batch[h:]}, queue...)
			return
		}
		done += len(batch)
		if err != nil {
			failed = append(failed, batch...)
			if len(batch) == 1 && refusesContent(err) {
				r := &TextRefusedError{Index: batch[0], Err: err}
				refused = append(refused, r)
				err = r
			}
			// The batches after an answer past its cap, of the same size
			// and model, would be answered past the cap too, each billed
			// for nothing; those after a refusal of the key or the model
			// would be refused too, at the key's rate, for as long as the
			// corpus takes.
			halts := errors.As(err, new(*EmbedAnswerTooLargeError)) || noBatchEscapes(err)
			if first == nil || halts && stop == nil {
				first = err
			}
			if halts && stop == nil {
				stop = err
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
	// A batch may be split down to single texts, so there may be as many
	// batches in flight as texts.
	for range min(cfg.concurrency, total) {
		wg.Go(func() {
			for {
				mu.Lock()
				for len(queue) == 0 && busy > 0 {
					wake.Wait() // a batch in flight may yet be split
				}
				if len(queue) == 0 {
					mu.Unlock()
					return
				}
				batch := queue[0]
				queue = queue[1:]
				busy++
				err := stop
				mu.Unlock()
				var got [][]float32
				if err == nil {
					limit := embedAnswerLimit(cfg.answerFloor, cfg.answerPerText, len(batch))
					got, err = embedBatch(ctx, client, cfg.base, model, texts, batch, &EmbedAnswerTooLargeError{
						Texts: len(batch), Limit: limit, floor: cfg.answerFloor, perText: cfg.answerPerText})
				}
				finish(batch, got, err)
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		slices.Sort(failed)
		slices.SortFunc(refused, func(a, b *TextRefusedError) int { return a.Index - b.Index })
		return vecs, &EmbedError{Failed: failed, Refused: refused, Err: first}
	}
	return vecs, nil
}

// refusesContent reports whether err is the server's refusal of what a
// request sent, which may be the fault of one of its texts rather than
// of the run: a 400 (an input too long for the model, an empty input), a
// 413 (a body too large) or a 422 (an input a server cannot process), but
// not an answer every batch would get too (an account out of credit).
func refusesContent(err error) bool {
	var api *APIError
	if !errors.As(err, &api) || noBatchEscapes(err) {
		return false
	}
	switch api.StatusCode {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// noBatchEscapes reports whether err, the failure of one batch, is what
// every other batch of the run would get too: the key refused (401, 403),
// its spending limit reached (402), its account out of quota, or the model
// unknown (404).
func noBatchEscapes(err error) bool {
	return errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrSpendingLimit) ||
		errors.Is(err, preset.ErrQuotaExceeded) || errors.Is(err, ErrModelNotFound)
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
// of idx, all of one length, none empty, or an error: tooLarge for an
// answer past tooLarge.Limit.
func embedBatch(ctx context.Context, client *http.Client, base, model string, texts []string, idx []int, tooLarge *EmbedAnswerTooLargeError) ([][]float32, error) {
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
	req, err := http.NewRequestWithContext(transport.WithoutFallback(preset.WithBatch(ctx, model, len(idx))), http.MethodPost, base+"/embeddings", bytes.NewReader(body))
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
		// Another model served (a fallback of a client's own, outside
		// the preset): these vectors, even of the same length, cannot be
		// compared with the asked model's.
		return nil, fmt.Errorf("together: embeddings answer is of the fallback model %q, not %q", served, model)
	}
	var out embedResponse
	if err := json.NewDecoder(&capReader{r: resp.Body, left: tooLarge.Limit, err: tooLarge}).Decode(&out); err != nil {
		if errors.Is(err, tooLarge) {
			return nil, tooLarge
		}
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
