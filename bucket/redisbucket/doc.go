// Package redisbucket is a [bucket.Store] in Redis, for many processes that
// share one API key.
//
// A bucket whose state is in Redis is shared by every process that uses
// the same key: a provider's limit is per key, and four replicas that each
// allow themselves the whole limit send four times what it allows.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	store := redisbucket.New(rdb, redisbucket.WithReplicas(4))
//	b := bucket.New(bucket.PerMinute(600), bucket.WithStore(store, "chat:llama"))
//	client := &http.Client{Transport: transport.Chain(nil, bucket.Limit(b))}
//
// # The state and the script
//
// A bucket is one Redis hash (one key, so one slot of a Cluster): GCRA's
// theoretical arrival time, the rate, the burst, when the rate was set, the
// end of a pause and the sequence number of the latest reservation, all in
// the Redis server's own clock, so the processes' clocks never have to
// agree. Each acquisition is one Lua script, atomic: it reserves the
// tokens and answers how long to wait for them, so a process sleeps
// exactly until its turn, with no polling and no herd of retries when a
// slot frees. Within a process, the
// bucket's FIFO queue sends only its head to Redis: one round trip per
// grant.
//
// The rate lives with the state: when [bucket.Limit] in one process lowers
// the rate after a 429 or raises it again, every process's next
// reservation is paced at it, and a pause set from a 429's reset holds
// every process's reservations until it ends.
//
// A cancelled reservation gives its tokens back only while it is the
// latest on the key (no process has reserved since): later reservations
// were told their times, and giving the slot back under them would let the
// next one in too early. Going back, the key steps to the reservation
// before, so a queue cancelled from its tail gives everything back.
//
// A key expires when its bucket would be full again and no pause holds,
// plus the idle time of [WithIdle] (a minute by default): an idle bucket
// costs nothing, and a rate lowered by a 429 survives a short lull.
//
// # Redis's memory policy
//
// A Redis that evicts keys under memory pressure (a maxmemory with any
// maxmemory-policy but noeviction; the keys expire, so the volatile-*
// policies take them too) drops a bucket's state, and every process starts
// it afresh with a full burst: the shared limit breaks, and nothing says
// so. Give the store a Redis with maxmemory-policy noeviction (a full one
// refuses writes, which the store sees, and it limits in process until it
// can write again). The store asks Redis once, after its first
// reservation, and warns through its logger when Redis may evict;
// [Store.CheckEviction] asks at any time, for a service that would rather
// not start.
//
// # When Redis is down or slow
//
// Each call to Redis is bounded by the store's timeout ([WithTimeout],
// 100 ms by default): in the caller's goroutine when the client bounds its
// reads by the context's deadline (go-redis's ContextTimeoutEnabled, as
// above, which saves a goroutine and a wake-up per call, unless a
// ReadTimeout or WriteTimeout of -2 turns the socket's deadlines off),
// else beside a timer. A call that fails or times out switches the store to limiting in
// process, at a share of the rate last seen in Redis: 1/n with
// [WithReplicas](n), else [DefaultShare] (a quarter). It says so once
// through its logger ([WithLogger]; slog's default logger, at Warn), tries
// Redis again at most every probe period ([WithProbe], 2 s by default)
// with one call, and says so again when Redis answers, from when on the
// shared state is used again. A request never hangs on Redis and is never
// let through unlimited: the timeout is the store's own, not only the
// client's (whose connection handshake may wait seconds for its dial
// timeout, without ContextTimeoutEnabled), and a call abandoned at it
// ends in the background.
//
// A rate and a pause a process sets while Redis is unreachable (a 429's)
// limit it in process, and are written when Redis next answers a
// reservation of the key, so that every replica takes them. A pause
// never shortens one the key holds. A rate is written only over one set
// before it, however long the key goes unreserved: a rate another replica
// set since (in its process's time of setting, outage or not), or that of
// a key made anew since (it expired, or Redis lost it) from a replica's
// rate, stays, and the process takes it.
//
// A reservation is sent to Redis once: go-redis does not send its script
// again after a failure (as its MaxRetries would), since a read timeout or
// a reset connection may come after Redis ran it, and a second run would
// reserve again. Such a call fails as any other does: the store limits in
// process, and a reservation Redis made costs the key a slot, never lets
// a request more through.
//
// The share assumes every replica lost Redis at once. A replica that alone
// loses it (its own network, a call slowed past the timeout) adds its
// share to what the others reserve in Redis, for at most a probe period;
// a timeout well above Redis's latency keeps that rare, and the server's
// 429s, whose pause every other replica shares, cover the rest.
//
// A key under the prefix that holds another type than a bucket's hash
// (another program's) is left alone: Redis answers, so only that key is
// limited in process, said once through the logger, and every other key
// stays shared. A bucket's hash whose fields are not numbers the scripts
// write is taken as a new bucket and written anew; and no call writes one:
// a shape that is no rate and burst (NaN, infinite, a rate not above zero,
// a burst below it) is refused by Reserve, ignored by SetRate, and left
// out of the hash by Pause, whose pause holds all the same.
package redisbucket
