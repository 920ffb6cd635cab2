package redisbucket

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/steadyapi/steady/bucket"
	"github.com/steadyapi/steady/transport"
)

// Defaults of the [Option]s.
const (
	// DefaultTimeout bounds each call to Redis: a local Redis answers in
	// well under a millisecond, so a call that takes this long means Redis
	// is down or overloaded, and waiting longer would only add the delay to
	// every request.
	DefaultTimeout = 100 * time.Millisecond
	// DefaultProbe is how often, while Redis is unreachable, one call tries
	// it again.
	DefaultProbe = 2 * time.Second
	// DefaultShare is the share of a bucket's rate a process allows itself
	// while Redis is unreachable, when [WithReplicas] is not given: a quarter, so
	// that up to four replicas falling back at once stay within the limit,
	// and more than four overshoot it by a bounded factor that the
	// server's 429s and the adaptive rate then bring down.
	DefaultShare = 0.25
	// DefaultPrefix starts every key the store writes.
	DefaultPrefix = "steady:bucket:"
	// DefaultIdle is how long a key outlives the moment its bucket would be
	// full again: long enough that a rate lowered by a 429 survives a short
	// idle spell, short enough that keys of buckets no longer used go.
	DefaultIdle = time.Minute
)

// Store is a [bucket.Store] in Redis. Make one with [New]; it is safe for
// concurrent use, and one Store serves every bucket of a process.
type Store struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
	probe   time.Duration
	share   float64
	idle    time.Duration
	log     func(msg string, args ...any)
	now     func() time.Time // the wall clock, to read a pause's end as a wait
	start   time.Time        // the store's creation: since times in process on the monotonic clock
	inline  bool             // the client bounds each call by its context's deadline

	// down is set while Redis is unreachable; then calls go to local, and
	// one call every probe tries Redis again.
	down      atomic.Bool
	nextProbe atomic.Int64 // the time (since) before which no call tries Redis
	events    atomic.Pointer[transport.EventFunc]
	mu        sync.Mutex
	local     map[string]*localBucket
	locals    int64              // in-process buckets made: each numbers its reservations apart
	outages   int64              // times Redis stopped answering: each outage's buckets are its own
	seen      map[string]float64 // the rate Redis last reported for a key
	// unsent holds the rate and burst this process set for a key while
	// Redis was unreachable, written there when it answers again unless
	// the key took a newer rate meanwhile.
	unsent map[string]pendingRate
	// unpaused holds the end of a pause (since) this process set for a key
	// while Redis was unreachable, written there when it answers again.
	unpaused map[string]float64
	checked  sync.Once // the eviction check (CheckEviction), after the first reservation
	foreign  sync.Once // the warning that a key under the prefix is no bucket
}

// Option configures a [Store]. Options not given keep the defaults
// documented with each.
type Option func(*Store)

// WithTimeout bounds each call to Redis (default [DefaultTimeout]); a call
// that takes longer counts as Redis being unreachable. A timeout that is
// not positive keeps the default.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithProbe sets how often Redis is tried again while it is unreachable
// (default [DefaultProbe]). A period that is not positive keeps the
// default.
func WithProbe(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.probe = d
		}
	}
}

// WithReplicas says how many processes share the keys: while Redis is
// unreachable each allows itself 1/n of a bucket's rate. n below 1 keeps
// the default share ([DefaultShare]).
func WithReplicas(n int) Option {
	return func(s *Store) {
		if n >= 1 {
			s.share = 1 / float64(n)
		}
	}
}

// WithShare sets the share of a bucket's rate (0 < share <= 1) a process
// allows itself while Redis is unreachable, when the number of replicas
// varies: the default is [DefaultShare]. Other values keep the default.
func WithShare(f float64) Option {
	return func(s *Store) {
		if f > 0 && f <= 1 {
			s.share = f
		}
	}
}

// WithPrefix sets what every key begins with (default [DefaultPrefix]).
// Keys of one bucket are one Redis key, so any prefix works with Cluster.
func WithPrefix(p string) Option { return func(s *Store) { s.prefix = p } }

// WithIdle sets how long a key outlives the moment its bucket would be
// full again (default [DefaultIdle]); the key then expires, and the next
// use starts the bucket afresh at the rate its caller gives. A negative
// duration keeps the default.
func WithIdle(d time.Duration) Option {
	return func(s *Store) {
		if d >= 0 {
			s.idle = d
		}
	}
}

// WithLogger sets where the store says that Redis became unreachable, and
// that it answers again: once each, at Warn. The default is
// [slog.Default]; nil logs nothing (the events of [Store.ReportEvents]
// still say it).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) {
		s.log = func(string, ...any) {}
		if l != nil {
			s.log = l.Warn
		}
	}
}

// WithEvents adds a hook that hears the store go local (Redis stopped
// answering: [transport.EventStore] from "shared" to "local", with the
// error and the share of each rate the process allows itself) and come
// back ("local" to "shared"). A preset given the store with an event hook
// of its own adds that hook too ([Store.ReportEvents]).
func WithEvents(fn transport.EventFunc) Option {
	return func(s *Store) { s.ReportEvents(fn) }
}

// New returns a store that keeps buckets in c: a *redis.Client, a
// sentinel-backed failover client, or a *redis.ClusterClient. A client
// made with ContextTimeoutEnabled (a *redis.Client or *redis.ClusterClient)
// is called in the caller's goroutine, since it ends each call at the
// store's timeout by itself; any other, and one whose ReadTimeout or
// WriteTimeout of -2 turns off the socket's deadlines (the context's too),
// is called beside the store's timer.
func New(c redis.UniversalClient, opts ...Option) *Store {
	s := &Store{
		c:        c,
		prefix:   DefaultPrefix,
		timeout:  DefaultTimeout,
		probe:    DefaultProbe,
		share:    DefaultShare,
		idle:     DefaultIdle,
		log:      func(msg string, args ...any) { slog.Default().Warn(msg, args...) },
		now:      time.Now,
		start:    time.Now(),
		local:    map[string]*localBucket{},
		seen:     map[string]float64{},
		unsent:   map[string]pendingRate{},
		unpaused: map[string]float64{},
	}
	for _, o := range opts {
		if o != nil {
			o(s)
		}
	}
	s.inline = honoursDeadlines(c)
	return s
}

// honoursDeadlines reports whether c bounds its socket reads and writes by
// the context's deadline (go-redis's ContextTimeoutEnabled): then a call
// can run in the caller's goroutine and still end at the store's timeout.
// Otherwise go-redis reads with its ReadTimeout (3 s by default), and its
// connection handshake waits for its DialTimeout (5 s), whatever the
// context says. A ReadTimeout or WriteTimeout of -2 turns the socket's
// deadlines off altogether, the context's with them: such a client is
// bounded beside the timer too (go-redis keeps -2 as a negative timeout
// once the options are set up, -1 as none but the context's).
func honoursDeadlines(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		o := c.Options()
		return o.ContextTimeoutEnabled && o.ReadTimeout >= 0 && o.WriteTimeout >= 0
	case *redis.ClusterClient:
		o := c.Options()
		return o.ContextTimeoutEnabled && o.ReadTimeout >= 0 && o.WriteTimeout >= 0
	}
	return false
}

var _ bucket.Store = (*Store)(nil)

// Local reports whether the store is limiting in process because Redis did
// not answer.
func (s *Store) Local() bool { return s.down.Load() }

// ReportEvents adds fn to the hooks that hear the store go local and come
// back (see [WithEvents]); it implements [bucket.EventReporter], through
// which a preset given the store adds its own hook. It is safe to call at
// any time.
func (s *Store) ReportEvents(fn transport.EventFunc) {
	if fn == nil {
		return
	}
	for {
		old := s.events.Load()
		var cur transport.EventFunc
		if old != nil {
			cur = *old
		}
		next := transport.Events(cur, fn)
		if s.events.CompareAndSwap(old, &next) {
			return
		}
	}
}

// emit reports e to the hooks, if any.
func (s *Store) emit(e transport.Event) {
	if fn := s.events.Load(); fn != nil {
		fn.Emit(e)
	}
}

// Reserve takes n tokens from the bucket key in one script, atomically with
// every other process, and answers how long to wait for them. When Redis is
// unreachable it reserves from an in-process bucket at the store's share of
// the rate instead.
//
// A caller that gives up while the script is on its way loses nothing:
// the script is let finish (within the store's timeout), since Redis may
// have run it already, and a reservation it made is given back before
// ctx's error is returned.
func (s *Store) Reserve(ctx context.Context, key string, n float64, maxWait time.Duration, shape bucket.Shape) (bucket.Reservation, error) {
	if ctx.Err() != nil {
		return bucket.Reservation{}, context.Cause(ctx)
	}
	if !(n >= 0) || math.IsInf(n, 0) || !shaped(shape) {
		// No count of tokens, or no rate or burst: refused, taking
		// nothing, rather than written into the shared state as a time
		// that is no time.
		return bucket.Reservation{Wait: bucket.MaxWait, Tokens: n}, nil
	}
	// A wait past MaxWait is never granted (it would not convert): refused
	// in the script, before it writes a time past what a field may hold.
	mw := bucket.MaxWait.Microseconds()
	if maxWait >= 0 {
		mw = maxWait.Microseconds()
	}
	var res bucket.Reservation
	err := s.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		v, err := reserveScript.Run(ctx, s.c, []string{s.prefix + key},
			n, shape.PerSecond, shape.Burst, mw, s.idle.Milliseconds()).Slice()
		if err != nil {
			return err
		}
		res, err = parseReservation(v)
		res.Tokens = n
		return err
	})
	switch {
	case err == nil:
		s.mu.Lock()
		unsent, has := s.unsent[key]
		delete(s.unsent, key)
		until, paused := s.unpaused[key]
		delete(s.unpaused, key)
		s.saw(key, res.Rate)
		s.mu.Unlock()
		if d := time.Duration(until - s.since()); paused && d > 0 {
			// The pause this process set while Redis was unreachable (a
			// 429's reset): written now, so that every replica is held.
			// Redis gone again, it holds in process, and waits for the
			// next answer.
			if s.writePause(context.WithoutCancel(ctx), key, d, shape) != nil {
				s.pauseLocally(key, until, shape)
			}
		}
		if has {
			// The rate this process set while Redis was unreachable (a 429
			// lowered it): written now, as it would have been then, so that
			// no replica goes back to the rate the server refused, unless
			// the key took a rate since (another replica set one, or the
			// key was made anew from another's): then this process takes
			// that one, as the reservation answered it. Redis gone again,
			// this process keeps its rate, which waits for the next answer
			// unless a newer one was set meanwhile.
			written, err := s.writeRate(context.WithoutCancel(ctx), key, unsent.shape, s.since()-unsent.at)
			if err != nil {
				s.rateLocally(key, unsent, false)
			}
			if err != nil || written {
				res.Rate = unsent.shape.PerSecond
			}
		}
		s.checked.Do(func() { go s.warnEviction() })
		if ctx.Err() != nil {
			s.Cancel(context.WithoutCancel(ctx), key, res)
			return bucket.Reservation{}, context.Cause(ctx)
		}
		return res, nil
	case ctx.Err() != nil:
		return bucket.Reservation{}, context.Cause(ctx)
	}
	return s.localBucket(key, shape).reserve(s.since(), n, maxWait), nil
}

// parseReservation reads the script's {ok, wait µs, seq, rate}.
func parseReservation(v []any) (bucket.Reservation, error) {
	if len(v) != 4 {
		return bucket.Reservation{}, fmt.Errorf("redisbucket: reserve answered %d values", len(v))
	}
	ok, _ := v[0].(int64)
	wait, _ := v[1].(int64)
	seq, _ := v[2].(int64)
	rs, _ := v[3].(string)
	rate, err := strconv.ParseFloat(rs, 64)
	if err != nil {
		return bucket.Reservation{}, fmt.Errorf("redisbucket: reserve answered rate %q", rs)
	}
	return bucket.Reservation{OK: ok == 1, Wait: micros(wait), Rate: rate, ID: seq}, nil
}

// micros is a wait of µs microseconds, at most bucket.MaxWait: a longer
// one would wrap around into the past, a grant at once.
func micros(µs int64) time.Duration {
	if µs >= int64(bucket.MaxWait/time.Microsecond) {
		return bucket.MaxWait
	}
	return time.Duration(max(µs, 0)) * time.Microsecond
}

// Cancel gives back the tokens of r if no reservation was made on key after
// it (the rule of the script: later reservations were told their times,
// which a give-back would contradict). A reservation made in process, while
// Redis was unreachable, is given back to the in-process bucket by the same
// rule.
func (s *Store) Cancel(ctx context.Context, key string, r bucket.Reservation) {
	if r.ID < 0 {
		s.mu.Lock()
		l := s.local[key]
		s.mu.Unlock()
		if l != nil {
			l.cancel(r)
		}
		return
	}
	if r.ID == 0 || !r.OK {
		return
	}
	_ = s.do(ctx, func(ctx context.Context) error {
		return cancelScript.Run(ctx, s.c, []string{s.prefix + key}, r.ID, r.Tokens).Err()
	})
}

// Pause holds every reservation on key until until, for every process.
// shape is the rate and burst of a key Redis does not hold yet; one that
// is no rate and burst (see [bucket.Shape]) is not written, and the pause
// holds all the same.
func (s *Store) Pause(ctx context.Context, key string, until time.Time, shape bucket.Shape) {
	d := until.Sub(s.now())
	if d <= 0 {
		return
	}
	if err := s.writePause(ctx, key, d, shape); err != nil && ctx.Err() == nil {
		s.pauseLocally(key, s.since()+float64(d), shape)
	}
}

// pauseLocally holds key in process until end (since), and remembers the
// pause for Redis when it answers again.
func (s *Store) pauseLocally(key string, end float64, shape bucket.Shape) {
	s.localBucket(key, shape).pause(end)
	s.mu.Lock()
	if old, ok := s.unpaused[key]; ok || len(s.unpaused) < maxRemembered {
		s.unpaused[key] = max(old, end)
	}
	s.mu.Unlock()
}

// writePause holds key in Redis for d from the server's now.
func (s *Store) writePause(ctx context.Context, key string, d time.Duration, shape bucket.Shape) error {
	return s.do(ctx, func(ctx context.Context) error {
		return pauseScript.Run(ctx, s.c, []string{s.prefix + key},
			d.Microseconds(), shape.PerSecond, shape.Burst, s.idle.Milliseconds()).Err()
	})
}

// SetRate sets key's rate and burst for every process.
func (s *Store) SetRate(ctx context.Context, key string, shape bucket.Shape) {
	if !shaped(shape) {
		return
	}
	at := s.since()
	if _, err := s.writeRate(ctx, key, shape, -1); err != nil && ctx.Err() == nil {
		s.rateLocally(key, pendingRate{shape: shape, at: at}, true)
	}
}

// pendingRate is a rate and burst this process set for a key while Redis
// was unreachable, and when (since).
type pendingRate struct {
	shape bucket.Shape
	at    float64
}

// rateLocally sets key's rate in process, and remembers it for Redis when
// it answers again: in place of one remembered already when latest, else
// only when none is.
func (s *Store) rateLocally(key string, p pendingRate, latest bool) {
	s.mu.Lock()
	_, ok := s.unsent[key]
	if ok && !latest {
		s.mu.Unlock()
		return // a newer rate was set meanwhile, and is remembered
	}
	if ok || len(s.unsent) < maxRemembered {
		s.unsent[key] = p
	}
	s.mu.Unlock()
	s.localBucket(key, p.shape).setRate(s.since(), p.shape.PerSecond*s.share, p.shape.Burst*s.share)
}

// shaped reports whether sh is a rate and burst the scripts may write: a
// rate above zero and a burst not negative, both finite. Anything else
// would be read back as absent, and would set the key's expiry to the
// longest, NaN or infinity being no number of milliseconds.
func shaped(sh bucket.Shape) bool {
	return sh.PerSecond > 0 && !math.IsInf(sh.PerSecond, 0) && sh.Burst >= 0 && !math.IsInf(sh.Burst, 0)
}

// writeRate writes key's rate and burst to Redis. ago is how long ago
// (ns) this process set them: then the key keeps a rate set after that,
// and written reports whether it took this one. A negative ago is a rate
// set now, written whatever the key holds.
func (s *Store) writeRate(ctx context.Context, key string, shape bucket.Shape, ago float64) (written bool, err error) {
	µs := int64(-1)
	if ago >= 0 {
		µs = int64(ago / 1e3)
	}
	err = s.do(ctx, func(ctx context.Context) error {
		n, err := rateScript.Run(ctx, s.c, []string{s.prefix + key},
			shape.PerSecond, shape.Burst, s.idle.Milliseconds(), µs).Int64()
		if err == nil {
			written = n == 1
		}
		return err
	})
	if err != nil {
		return false, err // written is not to be read: f may still run
	}
	s.mu.Lock()
	if written {
		s.saw(key, shape.PerSecond)
	}
	delete(s.unsent, key)
	s.mu.Unlock()
	return written, nil
}

// maxRemembered bounds how many keys a store remembers the rate of, and
// keeps an in-process bucket for while Redis is unreachable: a process
// whose buckets come and go (a key a user) does not grow without bound.
const maxRemembered = 4096

// saw notes the rate Redis holds for key, forgetting an arbitrary other
// key's when the store remembers maxRemembered already (that key's
// fallback then starts at its caller's rate). s.mu must be held.
func (s *Store) saw(key string, rate float64) {
	if _, ok := s.seen[key]; !ok && len(s.seen) >= maxRemembered {
		for k := range s.seen {
			delete(s.seen, k)
			break
		}
	}
	s.seen[key] = rate
}

// since is the time in process, in nanoseconds since the store was made,
// on the monotonic clock: what the store times itself (its in-process
// buckets, its probes) must not move with a step of the wall clock, which
// would hold a reservation or the next probe for as long as the step.
func (s *Store) since() float64 { return float64(time.Since(s.start)) }

// errLocal is what do answers while Redis is not due to be tried.
var errLocal = errors.New("redisbucket: limiting in process")

// do runs f against Redis with the store's timeout, unless Redis is known
// to be unreachable and not due to be tried again. It notes when Redis
// stops answering and when it answers again, and logs each once.
func (s *Store) do(ctx context.Context, f func(context.Context) error) error {
	if s.down.Load() {
		next := s.nextProbe.Load()
		now := int64(s.since())
		// One call per probe period tries Redis; the rest stay local.
		if now < next || !s.nextProbe.CompareAndSwap(next, now+int64(s.probe)) {
			return errLocal
		}
	}
	err := s.call(ctx, f)
	if err != nil && foreignKey(err) {
		// Redis answered, about one key: a key of another type under the
		// prefix, not the store's to overwrite. Its caller limits it in
		// process; every other key stays shared.
		s.foreign.Do(func() {
			s.log("redisbucket: a key under the store's prefix is not a bucket; it is limited in process", "err", err)
		})
	}
	if err == nil || foreignKey(err) {
		if s.down.CompareAndSwap(true, false) {
			// The next outage starts from the rates Redis holds then.
			s.mu.Lock()
			clear(s.local)
			s.mu.Unlock()
			s.log("redisbucket: Redis answers again; limits are shared again")
			s.emit(transport.Event{Kind: transport.EventStore, From: "local", To: "shared"})
		}
		return err
	}
	if ctx.Err() != nil { // the caller gave up: no news about Redis
		return err
	}
	s.nextProbe.Store(int64(s.since()) + int64(s.probe))
	s.mu.Lock()
	went := s.down.CompareAndSwap(false, true)
	if went {
		// An outage of its own: no in-process bucket of an earlier one is
		// taken up (see localBucket).
		s.outages++
	}
	s.mu.Unlock()
	if went {
		s.log("redisbucket: Redis unreachable; limiting in process",
			"share", s.share, "probe", s.probe, "err", err)
		s.emit(transport.Event{Kind: transport.EventStore, From: "shared", To: "local", Err: err, Rate: s.share})
	}
	return err
}

// call runs f against Redis, bounded by the store's timeout: in the
// caller's goroutine when the client ends its calls at the context's
// deadline, else beside the store's timer.
func (s *Store) call(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.inline {
		return f(ctx)
	}
	// A client that ignores context deadlines would wait its own timeouts
	// (seconds) for a Redis that does not answer: the call runs beside the
	// store's timer, and one abandoned at the timeout ends in the
	// background when the client gives up. f writes its results only for
	// a caller that receives its nil error.
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// foreignKey reports whether err is Redis's answer that a script's key
// holds another type than the hash of a bucket (WRONGTYPE; Redis 6 wraps
// it in a script error, Redis 7 keeps the code).
func foreignKey(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "WRONGTYPE")
}

// localBucket is key's in-process bucket, made at the store's share of the
// rate this process set and has not written yet, else of the rate last
// seen in Redis (or of shape's, if Redis was never reached), and held by
// a pause this process set and has not written yet.
func (s *Store) localBucket(key string, shape bucket.Shape) *localBucket {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.local[key]
	// A bucket of an earlier outage (made by a call that went local as
	// Redis answered again, after the buckets were cleared) is no bucket
	// of this one: it holds that outage's rate, not the rate Redis held
	// when this one began.
	if l == nil || l.outage != s.outages {
		if l == nil && len(s.local) >= maxRemembered {
			s.forgetLocal()
		}
		rate, burst := shape.PerSecond, shape.Burst
		if r, ok := s.seen[key]; ok && r > 0 {
			rate = r
		}
		// A rate or a pause this process set in an earlier outage, not
		// written to Redis yet, holds here too: it is newer than what
		// Redis last said.
		if u, ok := s.unsent[key]; ok {
			rate, burst = u.shape.PerSecond, u.shape.Burst
		}
		// Each bucket's IDs count down from a range of their own: a
		// reservation of an earlier outage's bucket names none of this one's.
		s.locals++
		l = newLocalBucket(rate*s.share, max(1, burst*s.share))
		l.seq = -(s.locals % (1 << 30)) << 32
		l.outage = s.outages
		if end, ok := s.unpaused[key]; ok {
			l.until = end
		}
		s.local[key] = l
	}
	return l
}

// forgetLocal makes room for a key's in-process bucket: it drops the
// buckets that are full again and hold no pause, which a new bucket
// replaces at no cost, or else an arbitrary one. s.mu must be held.
func (s *Store) forgetLocal() {
	now := s.since()
	for k, l := range s.local {
		if l.idle(now) {
			delete(s.local, k)
		}
	}
	for k := range s.local {
		if len(s.local) < maxRemembered {
			break
		}
		delete(s.local, k)
	}
}
