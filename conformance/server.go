package conformance

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Endpoint names: the keys of [Config.Limits], and [Arrival.Endpoint].
const (
	Chat        = "chat"        // POST /v1/chat/completions
	Completions = "completions" // POST /v1/completions
	Embeddings  = "embeddings"  // POST /v1/embeddings
	Images      = "images"      // POST /v1/images/generations
	FineTunes   = "fine-tunes"  // POST /v1/fine-tunes; GET /v1/fine-tunes[/{id}]
	Batches     = "batches"     // POST /v1/batches; GET /v1/batches[/{id}]
	Models      = "models"      // GET /v1/models
)

// Limits of Together's fine-tunes and batches, as its docs state them.
const (
	MaxRunningFineTunes = 3   // running fine-tune jobs per key; a 4th is refused with 409
	MaxBatchRequests    = 100 // requests in one batch; more is refused with 400
	MaxBatchesInFlight  = 10  // unfinished batches per key; more is refused with 429
)

// Config is the behaviour of a [Server]. The zero Config is a provider
// without limits, faults or latency that knows [DefaultModels].
type Config struct {
	// Seed seeds every random choice (latency jitter, fault shares). A
	// choice is not drawn in arrival order: it is a hash of the seed, the
	// request (its method, path and body, not its API key) and how many
	// times that request has passed the rate limits before. So a request meets the
	// same fate under one seed whatever arrives around it and in whatever
	// order simultaneous requests arrive (as goroutines woken at one
	// instant of a testing/synctest bubble do), and a run whose requests
	// differ in their bodies, as a [Workload]'s do, has an outcome that
	// depends on its seed, not on goroutine scheduling. Identical requests
	// are told apart only by their count.
	Seed int64
	// Limits holds the limit of each endpoint by name ([Chat],
	// [Embeddings], ...), applied to each API key separately. An endpoint
	// without an entry is unlimited.
	Limits map[string]Limit
	// Headers selects the rate headers to send; zero is Together's
	// documented form: x-ratelimit-reset on 429s only.
	Headers Headers
	// Dialect is the provider the server speaks as: its error answers, how
	// its token limits count, whether it limits each model apart (see
	// [Dialect]). The zero value is Together's.
	Dialect Dialect
	// Models are the known models; nil means [DefaultModels]. A name that
	// contains "bge", "bert", "embed", "e5-" or "gte" is an embedding model,
	// "FLUX" or "stable-diffusion" an image model, anything else a chat
	// model (as GET /v1/models reports them).
	Models []string
	// Latency is the service time of each answer that passes the rate
	// limits, plus a jitter drawn uniformly from [0, LatencyJitter). A 429
	// and an unroutable request are answered at once, as a gateway does.
	Latency, LatencyJitter time.Duration
	// StreamInterval is the pause before each streamed chunk after the
	// first: the pace of generated tokens. 0 sends them back to back.
	StreamInterval time.Duration
	// Faults are the scripted faults, tried in order.
	Faults []Fault
	// FineTuneDuration is how long a fine-tune job runs; 0 means 10
	// minutes.
	FineTuneDuration time.Duration
	// BatchDuration is how long a batch takes to complete; 0 means 5
	// minutes.
	BatchDuration time.Duration
}

// DefaultModels returns the models a server knows when [Config.Models] is
// nil: a few of Together's chat, embedding and image models.
func DefaultModels() []string {
	return []string{
		"meta-llama/Llama-3.3-70B-Instruct-Turbo",
		"meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
		"mistralai/Mixtral-8x7B-Instruct-v0.1",
		"Qwen/Qwen2.5-72B-Instruct-Turbo",
		"BAAI/bge-large-en-v1.5",
		"togethercomputer/m2-bert-80M-8k-retrieval",
		"black-forest-labs/FLUX.1-schnell",
	}
}

// Arrival is one request as the server saw it. A key or a model name over
// 256 bytes, which no provider issues, is kept as its first bytes, "~" and
// a hash of the whole: what a client names cannot grow the server's memory
// by more than that per request.
type Arrival struct {
	At       time.Duration // since NewServer
	Endpoint string        // the endpoint name; "" for a path the server does not serve
	Model    string        // the request's model, "" when it names none
	Key      string        // the API key of "Authorization: Bearer <key>"; "" when none
	Status   int           // the status answered; 0 for a reset or a hang
	BodyHash uint64        // FNV-1a of the request body
	Attempt  int           // 1 for the first arrival of this body hash, 2 for the second, ...
}

// maxNameLen bounds the bytes of a key or a model name the server keeps, in
// an [Arrival] and in the state of its limits and jobs. A longer name is
// kept as its first bytes, "~" and the hexadecimal FNV-1a of the whole, so
// that distinct names stay apart.
const maxNameLen = 256

// keptName is name as the server keeps it (see [maxNameLen]).
func keptName(name string) string {
	if len(name) <= maxNameLen {
		return name
	}
	const digest = 1 + 16 // "~" and 16 hexadecimal digits
	cut := maxNameLen - digest
	for cut > 0 && !utf8.RuneStart(name[cut]) {
		cut--
	}
	return name[:cut] + "~" + strconv.FormatUint(fnv1a(name)|1<<63, 16)
}

// Stats counts the server's answers.
type Stats struct {
	Arrivals     int // requests received
	OK           int // 2xx answers
	TooMany      int // 429 answers
	ServerErrors int // 5xx answers
	Other        int // everything else: other 4xx, resets, hangs
}

// Server is a simulated OpenAI-compatible provider that behaves as Together
// documents: per-key rate limits enforced per second, dynamic limits,
// token limits, 429s that say when to come back, and scripted faults; its
// limits can also be enforced as other servers do (see [Algorithm]) and
// told in other dialects (see [Headers]). It is an [http.RoundTripper] for tests in memory and an
// [http.Handler] for tests over a real connection; both decide every answer
// the same way. It starts no goroutine and reads the clock only through
// time.Now and timers, so inside a testing/synctest bubble it runs in
// virtual time: create it inside the bubble. It is safe for concurrent use.
//
// A request meets, in order: routing (404 for an unknown path, 405 for a
// wrong method), its body (400 when it is not the JSON the endpoint takes),
// the rate limits of its key and endpoint (429, answered at once), its
// model (404 model_not_found), the scripted faults, and last the endpoint
// itself. Every request is recorded as an [Arrival], whatever its fate.
type Server struct {
	cfg        Config
	start      time.Time
	modelTypes map[string]string
	modelsBody []byte
	// The bodies of 429s, made once: bursts of them are the common case,
	// and a body handed out is only ever read.
	requestLimited, tokenLimited []byte
	fineTune                     time.Duration
	batch                        time.Duration

	mu       sync.Mutex
	seq      uint64
	arrivals []Arrival
	attempts map[uint64]int
	// passes counts, by request identity, the passes through the limits:
	// the n of the n-th pass's draws.
	passes    map[uint64]uint64
	stats     Stats
	limiters  map[limiterKey]*keyLimits
	fineTunes map[string][]providerJob // by key
	batches   map[string][]providerJob // by key
}

// limiterKey names one key's limits: per endpoint, and per model where the
// dialect limits each model apart.
type limiterKey struct{ key, endpoint, model string }

// NewServer returns a server that behaves as cfg says. Time in its faults
// and arrivals is measured from this call.
func NewServer(cfg Config) *Server {
	cfg.Limits = copyLimits(cfg.Limits)
	cfg.Faults = append([]Fault(nil), cfg.Faults...)
	models := cfg.Models
	if models == nil {
		models = DefaultModels()
	}
	s := &Server{
		cfg:        cfg,
		start:      time.Now(),
		modelTypes: make(map[string]string, len(models)),
		fineTune:   cfg.FineTuneDuration,
		batch:      cfg.BatchDuration,
		attempts:   make(map[uint64]int),
		passes:     make(map[uint64]uint64),
		limiters:   make(map[limiterKey]*keyLimits),
		fineTunes:  make(map[string][]providerJob),
		batches:    make(map[string][]providerJob),
	}
	if s.fineTune <= 0 {
		s.fineTune = 10 * time.Minute
	}
	if s.batch <= 0 {
		s.batch = 5 * time.Minute
	}
	for _, m := range models {
		s.modelTypes[m] = modelType(m)
	}
	s.modelsBody = modelsBody(models, s.modelTypes)
	s.requestLimited = togetherError(ErrorRequestLimited, "rate_limit_exceeded",
		"You have been rate limited: too many requests. Retry after x-ratelimit-reset seconds.")
	s.tokenLimited = togetherError(ErrorTokenLimited, "rate_limit_exceeded",
		"You have been rate limited: too many tokens. Retry after x-ratelimit-reset seconds.")
	return s
}

func copyLimits(m map[string]Limit) map[string]Limit {
	c := make(map[string]Limit, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Arrivals returns a copy of every arrival so far, in order.
func (s *Server) Arrivals() []Arrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Arrival(nil), s.arrivals...)
}

// Stats returns the counts of the answers so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// maxRequestBody bounds the request bodies the server reads.
const maxRequestBody = 32 << 20

// maxBodyHint bounds the buffer a request's Content-Length reserves before
// its bytes arrive: the header is the client's word, and a client that
// announces 32 MiB and sends nothing must not cost the server 32 MiB per
// connection. A larger body grows the buffer as it arrives.
const maxBodyHint = 64 << 10

// readRequestBody reads and closes the request body, as both the RoundTripper and
// the Handler contracts want.
func readRequestBody(body io.ReadCloser, size int64) ([]byte, error) {
	if body == nil || body == http.NoBody {
		return nil, nil
	}
	defer body.Close()
	if size <= 0 || size > maxRequestBody {
		size = 512
	}
	size = min(size, maxBodyHint)
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(body, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if n > maxRequestBody {
		return nil, errTooLarge
	}
	return buf.Bytes(), nil
}

var errTooLarge = errors.New("conformance: request body over 32 MiB")

// RoundTrip answers req in memory, as the provider would over a network:
// it reads and closes the request body, waits the configured latency, and
// returns the answer, or an error for a reset connection and for a context
// that ends first (the context's error, as the standard transport returns).
// A streamed answer's body yields one server-sent event per Read.
func (s *Server) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	body, err := readRequestBody(req.Body, req.ContentLength)
	tooLarge := errors.Is(err, errTooLarge)
	if err != nil && !tooLarge {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a decision
	if tooLarge { // answered as over HTTP
		a = s.refuseTooLarge(req.Method, req.URL.Path, requestKey(req.Header))
	} else {
		a = s.decide(req.Method, req.URL.Path, requestKey(req.Header), body)
	}
	if err := waitCtx(ctx, a.delay); err != nil {
		return nil, err
	}
	switch a.action {
	case actReset:
		return nil, ErrReset
	case actHang:
		<-ctx.Done()
		return nil, ctx.Err()
	}
	resp := &http.Response{
		Status:        statusLine(a.status),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header,
		ContentLength: int64(len(a.body)),
		Request:       req,
	}
	switch {
	case a.chunks != nil:
		resp.ContentLength = -1
		resp.Body = newStreamBody(ctx, a.chunks, s.cfg.StreamInterval, a.action == actTruncate)
	case a.action == actTruncate:
		resp.Body = newStreamBody(ctx, [][]byte{a.body[:len(a.body)/2]}, 0, true)
	default:
		resp.Body = io.NopCloser(bytes.NewReader(a.body))
	}
	return resp, nil
}

// statusLine is the Status of an answer of status code, as net/http's
// client reads it from net/http's server: the code and its text, or
// "status code N" for a code that has none (Anthropic's 529).
func statusLine(code int) string {
	c := strconv.Itoa(code)
	if text := http.StatusText(code); text != "" {
		return c + " " + text
	}
	return c + " status code " + c
}

// ServeHTTP answers r over HTTP exactly as RoundTrip would in memory. A
// reset closes the connection without an answer; a streamed answer is
// flushed one event at a time.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := readRequestBody(r.Body, r.ContentLength)
	var a decision
	switch {
	case errors.Is(err, errTooLarge):
		a = s.refuseTooLarge(r.Method, r.URL.Path, requestKey(r.Header))
	case err != nil:
		h := w.Header()
		h["Content-Type"] = []string{"application/json"}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(s.errorBody(http.StatusBadRequest, "invalid_request_error", "invalid_body", "The request body could not be read."))
		return
	default:
		a = s.decide(r.Method, r.URL.Path, requestKey(r.Header), body)
	}
	if waitCtx(ctx, a.delay) != nil {
		return
	}
	rc := http.NewResponseController(w)
	switch a.action {
	case actReset:
		conn, _, err := rc.Hijack()
		if err != nil { // HTTP/2 cannot hand over its connection
			panic(http.ErrAbortHandler)
		}
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetLinger(0) // a real reset (RST), not an orderly close
		}
		_ = conn.Close()
		return
	case actHang:
		<-ctx.Done()
		return
	}
	h := w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	if a.chunks == nil {
		h["Content-Length"] = []string{strconv.Itoa(len(a.body))}
		w.WriteHeader(a.status)
		if a.action != actTruncate {
			_, _ = w.Write(a.body)
			return
		}
		_, _ = w.Write(a.body[:len(a.body)/2])
		_ = rc.Flush()
		panic(http.ErrAbortHandler) // closes the connection short of Content-Length
	}
	w.WriteHeader(a.status)
	for i, c := range a.chunks {
		if i > 0 && waitCtx(ctx, s.cfg.StreamInterval) != nil {
			return
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		_ = rc.Flush()
	}
	if a.action == actTruncate {
		panic(http.ErrAbortHandler) // no final empty chunk: the client reads an unexpected EOF
	}
}

// waitCtx waits d or until ctx is done, and then returns ctx's error.
func waitCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answerAction is what happens to a request beyond its status and body.
type answerAction uint8

const (
	actAnswer   answerAction = iota
	actReset                 // reset the connection
	actHang                  // answer nothing until the context is done
	actTruncate              // cut the body short
)

// decision is the server's answer to one request, shared by RoundTrip and
// ServeHTTP, which differ only in how they deliver it.
type decision struct {
	status int
	header http.Header
	body   []byte
	chunks [][]byte // the server-sent events of a streamed answer
	action answerAction
	delay  time.Duration
}

// bearerKey returns the key of an "Authorization: Bearer <key>" header.
func bearerKey(auth string) string {
	if len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
		return strings.TrimSpace(auth[7:])
	}
	return ""
}

// routeRequest names the endpoint of method and path, and the id of a GET of one
// job. status is 404 or 405 when the server does not serve the request.
func routeRequest(method, path string) (endpoint, id string, status int) {
	path = strings.TrimSuffix(path, "/")
	want := http.MethodPost
	switch path {
	case "/v1/chat/completions":
		endpoint = Chat
	case "/v1/completions":
		endpoint = Completions
	case "/v1/embeddings":
		endpoint = Embeddings
	case "/v1/messages":
		endpoint = Messages
	case "/v1/images/generations":
		endpoint = Images
	case "/v1/models":
		endpoint, want = Models, http.MethodGet
	case "/v1/fine-tunes", "/v1/batches":
		endpoint = path[len("/v1/"):]
		if method == http.MethodGet {
			want = method
		}
	default:
		for _, ep := range [...]string{FineTunes, Batches} {
			if rest, ok := strings.CutPrefix(path, "/v1/"+ep+"/"); ok && rest != "" && !strings.Contains(rest, "/") {
				endpoint, id, want = ep, rest, http.MethodGet
			}
		}
		if endpoint == "" {
			return "", "", http.StatusNotFound
		}
	}
	if method != want {
		return endpoint, id, http.StatusMethodNotAllowed
	}
	return endpoint, id, 0
}

// allowedMethods is the Allow header of a 405 for path: the methods the
// server serves there.
func allowedMethods(path string) string {
	var allow []string
	for _, m := range [...]string{http.MethodGet, http.MethodPost} {
		if _, _, status := routeRequest(m, path); status == 0 {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// fnv1a is the 64-bit FNV-1a hash, inline so that hashing every body (and
// the strings of a request's identity) costs no allocation.
func fnv1a[B ~string | ~[]byte](b B) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(b); i++ {
		h ^= uint64(b[i])
		h *= 1099511628211
	}
	return h
}

// decide makes the answer to one request and records its arrival. Routing
// and decoding happen before the lock; the limits, faults and jobs, which
// share state, under it.
func (s *Server) decide(method, path, key string, body []byte) decision {
	now := time.Now()
	endpoint, jobID, status := routeRequest(method, path)
	var p parsedBody
	var perr error
	if status == 0 && method == http.MethodPost {
		perr = p.parse(endpoint, body)
	}
	hash := fnv1a(body)
	id := requestIdentity(method, strings.TrimSuffix(path, "/"), hash)
	keptKey, keptModel := keptName(key), keptName(p.model)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[hash]++
	arr := Arrival{
		At:       now.Sub(s.start),
		Endpoint: endpoint,
		Model:    keptModel,
		Key:      keptKey,
		BodyHash: hash,
		Attempt:  s.attempts[hash],
	}
	a := s.answer(now, arr.At, method, endpoint, jobID, status, key, keptKey, keptModel, id, &p, perr)
	if a.status == http.StatusMethodNotAllowed {
		a.header.Set("Allow", allowedMethods(path))
	}
	if a.action != actReset && a.action != actHang {
		arr.Status = a.status
	}
	s.arrivals = append(s.arrivals, arr)
	s.stats.Arrivals++
	switch st := arr.Status; {
	case st >= 200 && st < 300:
		s.stats.OK++
	case st == http.StatusTooManyRequests:
		s.stats.TooMany++
	case st >= 500:
		s.stats.ServerErrors++
	default:
		s.stats.Other++
	}
	return a
}

// refuseTooLarge is the answer to a request whose body is over
// maxRequestBody, recorded as every arrival is (its body, not read whole,
// has no hash).
func (s *Server) refuseTooLarge(method, path, key string) decision {
	now := time.Now()
	endpoint, _, _ := routeRequest(method, path)
	const status = http.StatusRequestEntityTooLarge
	a := decision{status: status, header: http.Header{"Content-Type": {"application/json"}},
		body: s.errorBody(status, "invalid_request_error", "request_too_large", "The request body is over 32 MiB.")}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.arrivals = append(s.arrivals, Arrival{At: now.Sub(s.start), Endpoint: endpoint, Key: keptName(key), Status: status})
	s.stats.Arrivals++
	s.stats.Other++
	return a
}

// answer decides; s.mu is held. ident is the request's identity (see
// [requestIdentity]), id the job a GET names; keptKey and keptModel are key
// and the model as the server's state keeps them (see [maxNameLen]).
func (s *Server) answer(now time.Time, elapsed time.Duration, method, endpoint, id string, status int, key, keptKey, keptModel string, ident uint64, p *parsedBody, perr error) decision {
	jsonHeader := func() http.Header { return http.Header{"Content-Type": {"application/json"}} }
	switch {
	case status == http.StatusNotFound:
		return decision{status: status, header: jsonHeader(), body: s.errorBody(status, "invalid_request_error", "not_found", "Unknown path.")}
	case status != 0:
		return decision{status: status, header: jsonHeader(), body: s.errorBody(status, "invalid_request_error", "method_not_allowed", "Method not allowed.")}
	case perr != nil:
		return decision{status: http.StatusBadRequest, header: jsonHeader(), body: s.errorBody(http.StatusBadRequest, "invalid_request_error", "invalid_json", "The request body is not valid: "+perr.Error())}
	}

	var (
		lim     Limit
		limited bool
		l       *keyLimits
		req     rateWindow
		tok     rateWindow
		out     rateWindow
	)
	if lim, limited = s.cfg.Limits[endpoint]; limited {
		lk := limiterKey{key: keptKey, endpoint: endpoint}
		if s.cfg.Dialect != DialectTogether {
			lk.model = keptModel
		}
		if l = s.limiters[lk]; l == nil {
			l = new(keyLimits)
			s.limiters[lk] = l
		}
		in, output := s.tokensOf(endpoint, p)
		refusal, wait, rw, tw, ow := l.admit(&lim, now.UnixNano(), in, output)
		req, tok, out = rw, tw, ow
		if refusal != "" {
			h := jsonHeader()
			s.rateHeaders(h, http.StatusTooManyRequests, wait, req, tok, out, now, key)
			return decision{status: http.StatusTooManyRequests, header: h, body: s.limitedBody(refusal, p.model)}
		}
	}

	// Past the limits, the request's choices are its own (see draws.go):
	// counting passes rather than arrivals keeps them apart from the 429s,
	// which fall where the timing puts them.
	s.passes[ident]++
	d := newDraws(s.cfg.Seed, ident, s.passes[ident])
	a := decision{header: jsonHeader()}
	if s.cfg.Latency > 0 || s.cfg.LatencyJitter > 0 {
		a.delay = s.cfg.Latency
		if s.cfg.LatencyJitter > 0 {
			a.delay += time.Duration(d.int64n(saltLatency, int64(s.cfg.LatencyJitter)))
		}
	}
	var jobWait time.Duration // a 429 of a batch over the in-flight limit
	quota := false
	_, known := s.modelTypes[p.model]
	switch {
	case !known && servesModels(endpoint):
		a.status = http.StatusNotFound
		a.body = s.modelNotFound(p.model)
	default:
		f := s.fault(endpoint, p.model, elapsed, d)
		if f != nil && f.Kind != FaultTruncate {
			a.action = f.Kind.action()
			switch f.Kind {
			case FaultStatus:
				a.status = f.Status
				if a.status == 0 {
					a.status = http.StatusServiceUnavailable
				}
				typ, code, msg := faultError(a.status)
				a.body = s.errorBody(a.status, typ, code, msg)
			case FaultQuota:
				a.status, a.body = s.quotaAnswer()
				quota = true // an account out of credit: no rate to tell
			}
			break
		}
		if f != nil {
			a.action = actTruncate
		}
		if servesModels(endpoint) {
			a.status = http.StatusOK
			a.body, a.chunks = s.generate(endpoint, p, now)
			if a.action == actTruncate && a.chunks != nil {
				a.chunks = a.chunks[:len(a.chunks)/2]
			}
			if a.chunks != nil {
				a.header = http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
			}
		} else {
			a.status, a.body, jobWait = s.jobs(endpoint, id, keptKey, keptModel, method == http.MethodGet, p, now)
		}
	}
	if a.status >= 200 && a.status < 300 && a.action != actTruncate && lim.Dynamic {
		l.succeeded(now.UnixNano())
	}
	if (limited || a.status == http.StatusTooManyRequests) && a.action != actReset && a.action != actHang && !quota {
		s.rateHeaders(a.header, a.status, jobWait, req, tok, out, now, key)
	}
	return a
}

// action is what a fault of kind k does beyond its status.
func (k FaultKind) action() answerAction {
	switch k {
	case FaultReset:
		return actReset
	case FaultHang:
		return actHang
	case FaultTruncate:
		return actTruncate
	}
	return actAnswer
}

// servesModels reports whether endpoint runs a model, and so checks it.
func servesModels(endpoint string) bool {
	switch endpoint {
	case Chat, Completions, Embeddings, Images, Messages:
		return true
	}
	return false
}

// fault returns the first fault that hits a request, or nil. Each fault
// draws with a salt of its own, so its choice does not depend on the
// faults before it.
func (s *Server) fault(endpoint, model string, elapsed time.Duration, d draws) *Fault {
	for i := range s.cfg.Faults {
		if f := &s.cfg.Faults[i]; f.hits(endpoint, model, elapsed, d.float(saltFault+uint64(i))) {
			return f
		}
	}
	return nil
}
