package bucket

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/steadyapi/steady/transport"
)

// DefaultMaxKeys is how many keys [Keyed] keeps a limiter of their own for
// by default: more models than any account uses at once.
const DefaultMaxKeys = 256

// KeyedOption configures [Keyed].
type KeyedOption func(*keyedConfig)

type keyedConfig struct {
	key       func(*http.Request, string) string
	maxKeys   int
	store     Store
	prefix    string
	limit     []LimitOption
	events    transport.EventFunc // the hooks of limit, heard with the key filled in
	learn     time.Duration
	floor     float64 // the Limit's floor, in requests a second: no rate learnt is slower
	tokens    []TokenLimit
	noTokens  bool
	tokenSet  bool
	pauseOpts []LimitOption // WithMaxPause, WithPause and WithNotLimited, for the token limiters too
}

// WithKey sets what a request's key is: the default is its model (the
// top-level "model" of its JSON body, see [transport.RequestModel]); a
// request without one has the key "". f is given the request and its
// model, read once for the whole stack (as breaker.WithKey is); it may
// read the request's URL and headers, never its Body. A key longer than
// [transport.MaxKeyLen] is bounded by [transport.BoundKey].
func WithKey(f func(req *http.Request, model string) string) KeyedOption {
	return func(c *keyedConfig) { c.key = f }
}

// WithMaxKeys sets how many keys get a limiter of their own (default
// [DefaultMaxKeys]); past it, requests of further keys share one limiter,
// so a client sending thousands of model names is limited, not given
// unbounded memory. A number that is not positive keeps the default.
//
// The shared limiter is named "(keys past WithMaxKeys)" in a store (after
// the prefix of [WithKeyStore]) and in its events' Key; their Model is "",
// as the keys it holds are many. A key that begins with that name is
// named with it twice, in a store and in events, so that no key, whatever
// its name, shares the state of the keys past the limit.
func WithMaxKeys(n int) KeyedOption {
	return func(c *keyedConfig) {
		if n > 0 {
			c.maxKeys = n
		}
	}
}

// WithKeyStore keeps each key's request bucket in s, under prefix followed
// by the key (a preset names its route in the prefix: "chat:" and the
// model), so that every process sharing s shares each key's limit (see
// [WithStore]). Token limiters stay in the process. A nil store is
// ignored.
func WithKeyStore(s Store, prefix string) KeyedOption {
	return func(c *keyedConfig) {
		if s != nil {
			c.store, c.prefix = s, prefix
		}
	}
}

// WithLimitOptions sets options of every key's request limiter (see
// [Limit]): [WithCeiling], [WithFloor], [WithPause], [WithMaxPause],
// [WithNotLimited], [WithEvents]. The events of [WithEvents] given here are those of every
// limiter of Keyed, the token limiters' included, with Key set to the
// limiter's key (its store key, with a store; see [WithMaxKeys] for the
// name of the keys past it) and Model to the request's model when the key
// is the model. [WithCost] and [WithUnits] are Keyed's own to set and are
// ignored here.
func WithLimitOptions(opts ...LimitOption) KeyedOption {
	return func(c *keyedConfig) { c.limit = append(c.limit, opts...) }
}

// WithLearnedRate makes a key whose rate is unknown (Keyed given the zero
// [Rate]) take its rate from its first answer, when that states the
// server's request limit (x-ratelimit-limit-requests,
// anthropic-ratelimit-requests-limit): the limit, counted over period (a
// minute for OpenAI and Anthropic), or over the window the server states
// with it (Envoy's "10, 10;w=1", the IETF RateLimit-Policy's w), becomes
// the key's rate, its ceiling, and what its bucket holds, as the server's
// does. The key's first request is sent alone, the others waiting for its
// answer (or their deadlines), for [ProbeWait] from its sending at most,
// then sent at the slow start's rate; a request that gets no answer (an error)
// hands that turn to the next, as does a server failure (5xx, 529) that
// states no limit. Any other answer that states no limit leaves the key
// to start slow, as an unknown rate does. A rate learnt is never slower
// than the limiter's floor ([WithFloor], one request a minute by default):
// a window of a day or a year stated with a small limit does not hold
// the key to a request a day. A period that is not positive turns
// learning off, the default.
func WithLearnedRate(period time.Duration) KeyedOption {
	return func(c *keyedConfig) { c.learn = max(period, 0) }
}

// WithTokenLimits sets the server's limits on tokens of text that each key
// has a limiter for, beside its request limiter. The default is one,
// [TokenLimit]{Name: "tokens"}: idle until the server shows it limits
// tokens. Anthropic limits input and output tokens apart, and its preset
// gives two.
func WithTokenLimits(limits ...TokenLimit) KeyedOption {
	return func(c *keyedConfig) { c.tokens, c.tokenSet, c.noTokens = append(c.tokens, limits...), true, false }
}

// WithoutTokens turns the token limiters off: requests are limited by count
// alone.
func WithoutTokens() KeyedOption {
	return func(c *keyedConfig) { c.noTokens = true }
}

// Keyed returns a decorator that keeps a limiter of its own for each key
// of the requests it sees: by default each model, as providers limit each
// model of a key apart. Each key's limiter is a [Limit] on a bucket of
// its own made at rate (the zero Rate: unknown, found with a slow start,
// or learnt, see [WithLearnedRate]), with everything Limit learns from the
// answers; beside it, token limiters (see [TokenLimit]) take each
// request's estimated tokens of text ([transport.RequestTokens]), and
// correct them by the usage the answer reports as the caller reads it
// ([transport.WatchUsage]).
//
// Keys are bounded in count ([WithMaxKeys]) and in length
// ([transport.BoundKey]). A request that [transport.Inspect] has not read
// is read here once, for the key and the estimates of every limiter
// under Keyed. Every RoundTripper one Keyed wraps shares its limiters; use
// one Keyed per route.
func Keyed(rate Rate, opts ...KeyedOption) transport.Middleware {
	cfg := keyedConfig{maxKeys: DefaultMaxKeys}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	var scratch limitConfig
	for _, o := range cfg.limit {
		if o != nil {
			o(&scratch)
		}
	}
	cfg.events = scratch.events
	cfg.floor = 1.0 / 60
	if scratch.floor.Known() {
		cfg.floor = scratch.floor.PerSecond()
	}
	if scratch.maxPause > 0 {
		cfg.pauseOpts = append(cfg.pauseOpts, WithMaxPause(scratch.maxPause))
	}
	if scratch.defaultPause > 0 {
		cfg.pauseOpts = append(cfg.pauseOpts, WithPause(scratch.defaultPause))
	}
	if scratch.notLimited != nil {
		cfg.pauseOpts = append(cfg.pauseOpts, WithNotLimited(scratch.notLimited))
	}
	if !cfg.tokenSet {
		cfg.tokens = []TokenLimit{{Name: "tokens"}}
	}
	if cfg.noTokens {
		cfg.tokens = nil
	}
	return func(next http.RoundTripper) http.RoundTripper {
		if next == nil {
			next = http.DefaultTransport
		}
		return &keyed{cfg: cfg, rate: rate, next: next}
	}
}

type keyed struct {
	cfg  keyedConfig
	rate Rate
	next http.RoundTripper

	// byKey is read without a lock, on every request: a map that is
	// replaced, never changed, when a key is added (keys are few, and
	// added once each). mu orders the additions.
	byKey  atomic.Pointer[map[string]*keyLimiter]
	last   atomic.Pointer[keyLimiter] // the limiter of the last key looked up
	mu     sync.Mutex
	shared *keyLimiter // the keys past maxKeys
}

// CloseIdleConnections closes the idle connections of the transport it
// wraps.
func (k *keyed) CloseIdleConnections() { transport.CloseIdleConnections(k.next) }

func (k *keyed) RoundTrip(req *http.Request) (*http.Response, error) {
	return k.RoundTripInfo(req, transport.InfoOf(req))
}

// RoundTripInfo is RoundTrip for a request described by info (nil: not
// inspected, and read here), which is handed on with it.
func (k *keyed) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	if info == nil {
		var err error
		if req, info, err = transport.Read(req, 0); err != nil {
			return nil, err
		}
	}
	key := info.Model
	if k.cfg.key != nil {
		key = k.cfg.key(req, info.Model)
	}
	return k.limiter(key).RoundTripInfo(req, info)
}

// limiter returns key's limiter, made on first use.
func (k *keyed) limiter(key string) *keyLimiter {
	// The last key's limiter first: a key (a model's name, interned by
	// the reading of the body) compares faster than a map hashes it, and
	// most requests name the model the one before named.
	if kl := k.last.Load(); kl != nil && kl.key == key {
		return kl
	}
	key = transport.BoundKey(key)
	if m := k.byKey.Load(); m != nil {
		if kl, ok := (*m)[key]; ok {
			k.last.Store(kl)
			return kl
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.byKey.Load()
	n := 0
	if old != nil {
		if kl, ok := (*old)[key]; ok {
			return kl
		}
		n = len(*old)
	}
	if n >= k.cfg.maxKeys {
		if k.shared == nil {
			k.shared = k.newLimiter("", "", overflowKey)
		}
		return k.shared
	}
	model := key
	if k.cfg.key != nil {
		model = "" // the key is not the model: events name the key alone
	}
	kl := k.newLimiter(key, model, keyName(key))
	m := make(map[string]*keyLimiter, n+1)
	if old != nil {
		for key, l := range *old {
			m[key] = l
		}
	}
	m[key] = kl
	k.byKey.Store(&m)
	return kl
}

// keyLimiter is one key's limiters: the request limiter, swapped once when
// the rate is learnt, around the token limiters.
type keyLimiter struct {
	k        *keyed
	key      string // the key, bounded; "" for the keys past maxKeys
	storeKey string
	events   transport.EventFunc
	inner    http.RoundTripper // the token limiters, then next
	gates    []*tokenGate      // the token limiters, innermost first
	rt       atomic.Pointer[http.RoundTripper]
	learnt   atomic.Bool
	once     sync.Once
	// Until the rate is learnt, one request probes and the others wait
	// for its answer: probe is closed when it ends, and nil while no
	// request probes. A probe that got no answer (an error) hands the
	// turn to the next request. The others wait until ProbeWait after
	// probeSince, the probe's start, at most.
	probeMu    sync.Mutex
	probe      chan struct{}
	probeSince time.Time
}

// ProbeWait is the longest the requests of a key whose rate is learnt
// ([WithLearnedRate]) wait for the answer to its first request, counted
// from when that request was sent: an answer that takes longer (a long
// completion, a server that hangs) does not hold the key. They are then
// sent at the slow start's rate, as an unknown rate's requests are, and
// the answer still teaches the rate when it comes.
const ProbeWait = 5 * time.Second

// overflowKey is the name the keys past WithMaxKeys share their limiter's
// state under in a store, and in events: not "", the key of the requests
// that name no model, which have a limiter of their own. No key is named
// so (see keyName).
const overflowKey = "(keys past WithMaxKeys)"

// keyName is the name key's limiter keeps its state under in a store, and
// is named by in events: the key itself, but for a key that begins with
// overflowKey, which is named with overflowKey before it. No key's name is
// then overflowKey, and two keys never share a name: the names that begin
// with overflowKey twice are those of the keys that begin with it once.
func keyName(key string) string {
	if strings.HasPrefix(key, overflowKey) {
		return overflowKey + key
	}
	return key
}

// newLimiter makes the limiter of key, whose model (for events) is model,
// kept in a store under the prefix and name.
func (k *keyed) newLimiter(key, model, name string) *keyLimiter {
	kl := &keyLimiter{k: k, key: key, storeKey: k.cfg.prefix + name}
	kl.events = keyEvents(k.cfg.events, kl.storeKey, model)
	kl.inner = k.next
	for i := len(k.cfg.tokens) - 1; i >= 0; i-- {
		g := newTokenGate(&k.cfg.tokens[i], kl.inner, kl.events, k.cfg.pauseOpts)
		kl.inner, kl.gates = g, append(kl.gates, g)
	}
	kl.learnt.Store(k.cfg.learn <= 0 || k.rate.Known())
	rt := kl.build(k.rate, false, -1)
	kl.rt.Store(&rt)
	return kl
}

// build makes the request limiter at rate; learnt: rate is the server's
// stated limit, and its ceiling, and remaining (when not negative) what
// the server said remains of it.
func (kl *keyLimiter) build(rate Rate, learnt bool, remaining float64) http.RoundTripper {
	var opts0 []Option
	if learnt {
		// The server states the limit of a period, and its bucket holds
		// that much (OpenAI's and Anthropic's hold a minute); so does this
		// one, which the server's counts of what remains then keep honest.
		// It starts with what the server said remains: a count whose reset
		// has passed by the time the answer arrives (Anthropic's resets are
		// times, and a bucket nearly full is full again within a latency)
		// is not one the limiter takes later.
		opts0 = append(opts0, WithBurst(max(rate.Tokens, 1)))
		if remaining >= 0 {
			opts0 = append(opts0, WithInitial(remaining))
		}
	}
	if kl.k.cfg.store != nil {
		opts0 = append(opts0, WithStore(kl.k.cfg.store, kl.storeKey))
	}
	b := New(rate, opts0...)
	if learnt && kl.k.cfg.store != nil {
		b.SetRate(rate) // the store may hold the rate of the slow start
	}
	opts := append([]LimitOption(nil), kl.k.cfg.limit...)
	if learnt {
		opts = append(opts, WithCeiling(rate))
	}
	opts = append(opts, func(c *limitConfig) {
		// The token limiters read the answers' signals from the request
		// limiter: an answer's headers are parsed once for all of the
		// key's limiters.
		c.events, c.cost, c.units, c.gates = kl.events, nil, Requests, kl.gates
	})
	return Limit(b, opts...)(kl.inner)
}

func (kl *keyLimiter) RoundTripInfo(req *http.Request, info *transport.Info) (*http.Response, error) {
	if kl.learnt.Load() {
		return transport.Forward(*kl.rt.Load(), req, info)
	}
	// The first request probes; the others wait for its answer, which
	// tells the rate. Sent meanwhile, at the slow start's rate, they would
	// be more than the rate learnt allows: a limiter made later cannot
	// count what an earlier one let through. An answer that has not come
	// within ProbeWait is one whose wait costs more than that: they go.
	for !kl.learnt.Load() {
		kl.probeMu.Lock()
		if kl.learnt.Load() {
			kl.probeMu.Unlock()
			break
		}
		wait, since := kl.probe, kl.probeSince
		if wait == nil {
			kl.probe, kl.probeSince = make(chan struct{}), time.Now()
		}
		kl.probeMu.Unlock()
		if wait == nil {
			return kl.probeWith(req, info)
		}
		left := ProbeWait - time.Since(since)
		if left <= 0 {
			break // the probe is out too long: sent at the slow start's rate
		}
		timer := time.NewTimer(left)
		select {
		case <-wait:
			timer.Stop()
			continue
		case <-timer.C:
		case <-req.Context().Done():
			timer.Stop()
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, context.Cause(req.Context())
		}
		break
	}
	return transport.Forward(*kl.rt.Load(), req, info)
}

// probeWith sends req as the key's probe. An answer ends probing, whether
// or not it states the limit (a server that states none is found with
// the slow start), but for a server failure (5xx, 529) that states none;
// such an answer, or an error, no answer at all, hands the probe to the
// next request.
func (kl *keyLimiter) probeWith(req *http.Request, info *transport.Info) (resp *http.Response, err error) {
	answered := false
	defer func() {
		kl.probeMu.Lock()
		if answered {
			kl.learnt.Store(true)
		}
		close(kl.probe)
		kl.probe = nil
		kl.probeMu.Unlock()
	}()
	sent := time.Now()
	resp, err = transport.Forward(*kl.rt.Load(), req, info)
	if err == nil {
		kl.learn(req, resp, sent)
		// A server failure (a 5xx, Anthropic's 529) comes from a server,
		// or a gateway in front of it, that states no limit on it: it
		// hands the probe on, as an error does, so that the first answer
		// that states the limit still sets the rate. (One that stated it
		// was learnt above.)
		answered = resp.StatusCode < http.StatusInternalServerError
	}
	return resp, err
}

// learn takes the rate from the answer to req, sent at sent, when it
// states the request limit, and reports it as a change of rate. The new
// limiter counts req as its own first request, and learns from its answer
// what it would have learnt had it sent it (the server's count, a 429's
// pause): its count and the server's then agree from the start. A limit
// under one request is none, as [Limit] reads it: the key starts slow.
func (kl *keyLimiter) learn(req *http.Request, resp *http.Response, sent time.Time) {
	sig := transport.ParseSignals(resp.Header, time.Now())
	if !(sig.Requests.Limit >= 1) {
		return
	}
	kl.once.Do(func() {
		per := kl.k.cfg.learn
		if p := sig.Requests.Period; p > 0 {
			per = p // the server states its window (Envoy's w=, the IETF policy's)
		}
		rate := Rate{Tokens: sig.Requests.Limit, Per: per}
		if f := kl.k.cfg.floor; rate.PerSecond() < f {
			// A server's window of a day, or a year, would hold the key
			// to a request a day: the floor is as slow as any rate a
			// server teaches. (Per only shortens, and cannot overflow.)
			rate.Per = time.Duration(rate.Tokens / f * float64(time.Second))
		}
		remaining := sig.Requests.Remaining
		if remaining >= 0 {
			remaining++ // the probe's token, taken below
		}
		rt := kl.build(rate, true, remaining)
		// The rate learnt is reported first: what the probe's answer then
		// teaches the new limiter (a 429's lower rate) is the rate set
		// last.
		if kl.events != nil {
			kl.events.Emit(transport.Event{Kind: transport.EventRateChanged, Endpoint: transport.Endpoint(req),
				Rate: rate.PerSecond(), Reason: "requests"})
		}
		if l, ok := rt.(*limited); ok {
			b := l.c.b
			var tk ticket
			var err error
			if b.link != nil {
				// The slow start's bucket reserved the probe in the store
				// already, under the same key: it is counted here alone,
				// not reserved again (and its answer held for it).
				tk = b.counted(1, true)
			} else {
				tk, err = b.wait(context.WithoutCancel(req.Context()), 1, true)
			}
			if err == nil {
				b.sending(&tk, 1)
				b.answered(1)
				// The limiter that sent the probe reported its 429 already:
				// the same answer, told again, is no second 429. No other
				// request sees the new limiter yet, so its hook is swapped
				// for the replay alone.
				events := l.c.cfg.events
				if events != nil {
					l.c.cfg.events = func(e transport.Event) {
						if e.Kind != transport.EventPaused {
							events(e)
						}
					}
				}
				l.c.observe(req, nil, resp, sent, answerTime(sent), tk, 1, false)
				l.c.cfg.events = events
			}
		}
		kl.rt.Store(&rt)
		kl.learnt.Store(true)
	})
}

// keyEvents hands the events of a key's limiters to fn with the key and
// the model set. nil when fn is, so that the limiters skip their events
// altogether.
func keyEvents(fn transport.EventFunc, key, model string) transport.EventFunc {
	if fn == nil {
		return nil
	}
	return func(e transport.Event) {
		e.Key, e.Model = key, model
		fn(e)
	}
}
