package together

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Model is one entry of the model catalog (GET /v1/models).
type Model struct {
	ID            string `json:"id"`                       // the name a request gives as its model
	Object        string `json:"object"`                   // "model"
	Type          string `json:"type"`                     // "chat", "language", "embedding", "image", ...
	DisplayName   string `json:"display_name,omitempty"`   // its name for people
	Organization  string `json:"organization,omitempty"`   // who made it
	ContextLength int    `json:"context_length,omitempty"` // the most tokens it reads and writes at once
}

// DefaultCatalogTTL is how long a [Catalog] keeps the model list before it
// asks the server again.
const DefaultCatalogTTL = 10 * time.Minute

// maxCatalogBody bounds the model list read from the server: a longer
// one is refused.
const maxCatalogBody = 16 << 20

// Catalog fetches the model list once and keeps it for a while, so that
// checking the model of every batch costs no request. It is safe for
// concurrent use.
type Catalog struct {
	client  *http.Client
	baseURL string
	ttl     time.Duration

	mu      sync.Mutex
	models  []Model // shared by every reader: never changed, only replaced
	fetched time.Time
	flight  *catalogFetch // the fetch under way, if any
}

// catalogFetch is one fetch of the model list, shared by every caller that
// asks while it runs. It runs on a context of its own, cancelled when the
// last caller waiting for it has left, so that no caller waits past its
// own deadline and no fetch outlives all of them.
type catalogFetch struct {
	done    chan struct{}
	models  []Model
	err     error
	waiting int // callers waiting; guarded by Catalog.mu
	cancel  context.CancelFunc
}

// NewCatalog returns a catalog that lists models through client (nil means
// [http.DefaultClient]) from baseURL ("" means [DefaultBaseURL], which a
// client of [NewClient] sends to its own root), kept for ttl (0 or less
// means [DefaultCatalogTTL]).
func NewCatalog(client *http.Client, baseURL string, ttl time.Duration) *Catalog {
	if client == nil {
		client = http.DefaultClient
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	if ttl <= 0 {
		ttl = DefaultCatalogTTL
	}
	return &Catalog{client: client, baseURL: strings.TrimSuffix(baseURL, "/"), ttl: ttl}
}

// Models returns the model list, from the cache while it is fresh. One
// fetch serves every caller that asks while it runs; each caller waits for
// it at most until its own context ends. The list returned is the
// caller's own copy, free to sort or filter in place.
func (c *Catalog) Models(ctx context.Context) ([]Model, error) {
	models, err := c.shared(ctx)
	return slices.Clone(models), err
}

// shared is Models without the copy, for the catalog's own reading.
func (c *Catalog) shared(ctx context.Context) ([]Model, error) {
	c.mu.Lock()
	if c.models != nil && time.Since(c.fetched) < c.ttl {
		models := c.models
		c.mu.Unlock()
		return models, nil
	}
	f := c.flight
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &catalogFetch{done: make(chan struct{}), cancel: cancel}
		c.flight = f
		go c.fetch(fctx, f)
	}
	f.waiting++
	c.mu.Unlock()

	select {
	case <-f.done:
	case <-ctx.Done():
	}
	select {
	case <-f.done:
		c.mu.Lock()
		f.waiting--
		c.mu.Unlock()
		return f.models, f.err
	default:
	}
	c.mu.Lock()
	f.waiting--
	if f.waiting == 0 && c.flight == f {
		// Nobody waits for it any more: it is cancelled, and the next
		// caller starts a fetch of its own.
		c.flight = nil
		f.cancel()
	}
	c.mu.Unlock()
	return nil, context.Cause(ctx)
}

// fetch runs f and publishes its outcome.
func (c *Catalog) fetch(ctx context.Context, f *catalogFetch) {
	defer f.cancel()
	f.models, f.err = fetchModels(ctx, c.client, c.baseURL)
	c.mu.Lock()
	if f.err == nil {
		c.models, c.fetched = f.models, time.Now()
	}
	if c.flight == f {
		c.flight = nil
	}
	c.mu.Unlock()
	close(f.done)
}

// Check returns nil when model is in the catalog and an
// [*UnknownModelError] naming the closest known models when it is not.
// Errors fetching the list are returned as they are.
func (c *Catalog) Check(ctx context.Context, model string) error {
	models, err := c.shared(ctx)
	if err != nil {
		return err
	}
	ids := make([]string, len(models))
	for i, m := range models {
		if m.ID == model {
			return nil
		}
		ids[i] = m.ID
	}
	return &UnknownModelError{Model: model, Suggestions: closest(model, ids, 3)}
}

// Models lists the models the API serves (GET /v1/models), through client
// (nil means [http.DefaultClient]). Every call asks the server; a [Catalog]
// keeps the list. A list over 16 MiB is refused, unread.
func Models(ctx context.Context, client *http.Client) ([]Model, error) {
	if client == nil {
		client = http.DefaultClient
	}
	return fetchModels(ctx, client, DefaultBaseURL)
}

// UnknownModelError is returned before any request is sent when a model is
// not in the catalog.
type UnknownModelError struct {
	Model       string   // the model asked for
	Suggestions []string // the closest known model IDs, best first, each once
}

// Error names the model and the closest known ones.
func (e *UnknownModelError) Error() string {
	msg := fmt.Sprintf("together: unknown model %q", e.Model)
	if len(e.Suggestions) > 0 {
		msg += "; did you mean " + strings.Join(e.Suggestions, ", ") + "?"
	}
	return msg
}

// Is makes an UnknownModelError match [ErrModelNotFound].
func (e *UnknownModelError) Is(target error) bool { return target == ErrModelNotFound }

func fetchModels(ctx context.Context, client *http.Client, baseURL string) ([]Model, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/models", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := CheckResponse(resp); err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCatalogBody+1))
	if err != nil {
		return nil, fmt.Errorf("together: reading model list: %w", err)
	}
	if len(body) > maxCatalogBody {
		// Cut at the cap, it would read as a list "not JSON".
		return nil, fmt.Errorf("together: model list is over %d MiB: not read", maxCatalogBody>>20)
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(body, &entries); err != nil {
		// OpenAI's shape: {"object": "list", "data": [...]}.
		var list struct{ Data []json.RawMessage }
		if err2 := json.Unmarshal(body, &list); err2 != nil || list.Data == nil {
			return nil, fmt.Errorf("together: model list is not JSON: %w", err)
		}
		entries = list.Data
	}
	models := make([]Model, 0, len(entries))
	for _, e := range entries {
		models = append(models, readModel(e))
	}
	// An entry without an id ({}, null, a gateway's "name") names no
	// model a request could give: it is dropped, not kept as "".
	models = slices.DeleteFunc(models, func(m Model) bool { return m.ID == "" })
	if len(models) == 0 {
		// Together always lists models: an empty list (or null) is a
		// proxy's or a broken answer, and a catalog made of it would call
		// every model unknown until it went stale.
		return nil, errors.New("together: model list is empty")
	}
	return models, nil
}

// readModel reads one entry of the model list. A field of another type
// than the others' (a context length written 131072.0 or "32768", an
// object for a name) does not cost the entry, nor the list: the fields
// that read are kept, and a context length that is a whole number in a
// float or in text is read as one. An entry that is no object reads as
// no model (no id).
func readModel(raw json.RawMessage) Model {
	var m Model
	var typed *json.UnmarshalTypeError
	if err := json.Unmarshal(raw, &m); err == nil || !errors.As(err, &typed) {
		return m // the zero Model for an entry that is no object
	}
	// json filled every field it could; only the context length is worth
	// reading again.
	if m.ContextLength == 0 {
		var f struct {
			ContextLength json.RawMessage `json:"context_length"`
		}
		if json.Unmarshal(raw, &f) == nil {
			m.ContextLength = wholeNumber(f.ContextLength)
		}
	}
	return m
}

// wholeNumber is the whole number a JSON value writes, as a number
// (131072.0) or in text ("32768"); 0 for anything else.
func wholeNumber(raw json.RawMessage) int {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = json.RawMessage(strings.TrimSpace(text))
	}
	var f float64
	if json.Unmarshal(raw, &f) != nil || f != math.Trunc(f) || f < 0 || f > math.MaxInt32 {
		return 0
	}
	return int(f)
}

// closest returns up to n of ids nearest to want: those containing it (or
// contained in it) first, then by edit distance, ignoring case. An id that
// ids holds more than once is scored, and returned, once.
func closest(want string, ids []string, n int) []string {
	type scored struct {
		id    string
		score int
	}
	w := strings.ToLower(want)
	var s []scored
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		l := strings.ToLower(id)
		limit := max(len(w), len(l)) / 2
		var d int
		switch {
		case strings.Contains(l, w) || strings.Contains(w, l):
			d = 0
		case abs(len(w)-len(l)) > limit:
			// The distance is at least the difference of the lengths:
			// too far, and not worth rows of the longer's length.
			continue
		default:
			d = levenshtein(w, l)
		}
		if d <= limit {
			s = append(s, scored{id, d})
		}
	}
	slices.SortStableFunc(s, func(a, b scored) int { return a.score - b.score })
	out := make([]string, 0, n)
	for i := 0; i < len(s) && i < n; i++ {
		out = append(out, s[i].id)
	}
	return out
}

func abs(n int) int { return max(n, -n) }

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
