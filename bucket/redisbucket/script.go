package redisbucket

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The scripts keep one bucket in one hash (one key, so one cluster slot),
// with these fields, times in microseconds of the Redis server's clock
// (TIME), so that the replicas' clocks never have to agree:
//
//	b  the time at which the bucket is empty (GCRA's theoretical arrival
//	   time); it holds (now-b)×r/1e6 tokens, at most u; absent: the bucket
//	   is new, and its first request passes at once
//	r  the rate, tokens a second: the one every replica uses
//	u  the burst, tokens
//	p  the end of a pause: nothing is granted before it
//	s  the sequence number of the latest reservation, for Cancel
//	t  when the rate was set: by SetRate, when its process set it (which
//	   may be before an outage ended), or when the key was made from a
//	   caller's rate; absent in a key of an older version, taken as older
//	   than any rate
//
// Numbers are written with %.17g: Lua's own tostring keeps 14 digits, and a
// time in microseconds needs 16.
//
// A field read is taken only if it is one the scripts could have written:
// a number, finite, a time within an int64 of microseconds, a rate no
// slower than a bucket keeps (a token every 100 days), a burst not
// negative, a whole sequence number. Anything else (a hand edit, another
// program under the prefix, another version's fields) is taken as absent,
// as in a new bucket: garbage neither lets every request through nor
// fails the script, which would leave the key without an expiry and the
// store limiting in process.
//
// Every script ends by setting the key to expire when the bucket would be
// full again and no pause holds, plus the margin (ARGV[last]): an idle key
// costs nothing, and a state worth keeping (a pause, a lowered rate, a
// queue of reservations) outlives it. The expiry is at least a millisecond
// (PEXPIRE 0 would drop the state at once) and at most 1e15 ms, written
// as an integer (tostring's 1e+15 is no integer to PEXPIRE).
const scriptHead = `
-- Redis 5 and 6 replicate a script that reads TIME only by its effects
-- when asked; Redis 7 always does, and ignores this.
redis.replicate_commands()
local function num(x) return string.format('%.17g', x) end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function field(x, lo, hi)
  local v = tonumber(x)
  if v == nil or not (v >= lo and v < hi) then return nil end
  return v
end
local function time(x) return field(x, -2^62, 2^62) end
local function rateOf(x) return field(x, 1e-8, math.huge) end
local function burstOf(x) return field(x, 0, math.huge) end
local function seqOf(x)
  local v = field(x, 0, 2^53 - 1)
  if v == nil or v ~= math.floor(v) then return nil end
  return v
end
local function micros(x)
  if not (x < 2^62) then return 2^62 end
  return math.max(math.ceil(x), 0)
end
local function expire(key, now, base, pause, every, burst, margin)
  local full = math.max(base, pause, now) + burst * every
  local ms = math.ceil((full - now) / 1000 + margin)
  if not (ms < 1e15) then ms = 1e15 end
  if not (ms >= 1) then ms = 1 end
  redis.call('PEXPIRE', key, string.format('%.0f', ms))
end
`

// reserveScript takes ARGV[1] tokens. ARGV: n, rate, burst (used when the
// key is new), the longest wait allowed in µs (negative: any), margin (ms).
// It answers {ok (1/0), wait µs, seq, rate}.
//
// The rules are the in-memory bucket's: a new bucket lets its first request
// through at once and paces the rest from it; an idle bucket saves at most
// burst; a request larger than the burst waits its full share; at the end
// of a pause the first request passes at once and the bucket has saved
// nothing during it.
var reserveScript = newOnceScript(scriptHead + `
local key = KEYS[1]
local n = tonumber(ARGV[1])
local h = redis.call('HMGET', key, 'b', 'r', 'u', 'p', 's')
local rate, burst = rateOf(h[2]), burstOf(h[3])
local shape = rate == nil or burst == nil -- written with the reservation
rate = rate or tonumber(ARGV[2])
burst = burst or tonumber(ARGV[3])
local pause = time(h[4]) or 0
local every = 1000000 / rate
local now = clock()
-- a new key's sequence starts at the server's clock: the IDs of a state
-- lost (a restart, a flush, an eviction) name none of the new one's
local seq = seqOf(h[5]) or now
local base = time(h[1])
local floor = now - burst * every
if base == nil then
  floor = now - math.min(n, burst) * every
  base = floor
end
if pause > 0 then
  -- nothing saved during a pause; the first request after it passes
  floor = math.max(floor, pause - math.min(n, burst) * every)
end
base = math.max(base, floor)
local start = math.max(now, pause)
local after = base + n * every
local at = math.max(start, after)
local wait = at - now
local maxWait = tonumber(ARGV[4])
if maxWait >= 0 and wait > maxWait then
  return {0, micros(wait), seq, num(rate)}
end
seq = seq + 1
redis.call('HSET', key, 'b', num(after), 's', num(seq))
if shape then
  redis.call('HSET', key, 'r', num(rate), 'u', num(burst), 't', num(now))
end
expire(key, now, after, pause, every, burst, tonumber(ARGV[5]))
return {1, micros(wait), seq, num(rate)}
`)

// cancelScript gives back ARGV[2] tokens of reservation ARGV[1] if it is
// still the latest on the key: no reservation made after it was told a
// time that the give-back would now contradict. The key's sequence number
// steps back, so the reservation before it, if it too is cancelled, gives
// back its tokens as well. It answers 1 when the tokens were given back.
var cancelScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 's')
local base, rate, seq = time(h[1]), rateOf(h[2]), seqOf(h[3])
if base == nil or rate == nil or seq ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', key, 'b', num(base - tonumber(ARGV[2]) * 1000000 / rate), 's', num(seq - 1))
return 1
`)

// pauseScript holds the bucket for ARGV[1] µs from the server's now, unless
// a longer pause already holds. ARGV: wait µs, rate, burst (if new), margin.
// A rate and burst the key lacks are written from ARGV only if they are a
// rate and a burst: the pause holds without them, and the key expires at
// its end.
var pauseScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 'u', 'p')
local rate, burst = rateOf(h[2]), burstOf(h[3])
local now = clock()
if rate == nil or burst == nil then
  rate, burst = rateOf(ARGV[2]), burstOf(ARGV[3])
  if rate ~= nil and burst ~= nil then
    redis.call('HSET', key, 'r', num(rate), 'u', num(burst), 't', num(now))
  end
end
local pause = math.max(time(h[4]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', key, 'p', num(pause))
local every = 0
if rate ~= nil and burst ~= nil then
  every = 1000000 / rate
else
  burst = 0
end
expire(key, now, time(h[1]) or now, pause, every, burst, tonumber(ARGV[4]))
return 1
`)

// rateScript sets the rate and burst, keeping the tokens the bucket holds
// (a queue of reservations already told their times keeps them). Cancels
// of reservations made before it no longer give back: their tokens were
// counted at the old rate. ARGV: rate, burst, margin, and how long ago
// the rate was set, µs: a rate set then (during an outage) is written
// only over one set before it, a rate set now (negative) whatever the key
// holds. It answers 1 when it wrote the rate, 0 when the key's is newer.
var rateScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 'p', 's', 't')
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local set, ago = now, tonumber(ARGV[4])
if ago >= 0 then
  set = now - ago
  local was = time(h[5])
  if was ~= nil and was > set then
    return 0
  end
end
local base = time(h[1])
local old = rateOf(h[2])
if base ~= nil and old ~= nil and base < now then
  base = now - (now - base) * old / rate
end
redis.call('HSET', key, 'r', num(rate), 'u', num(burst), 's', num((seqOf(h[4]) or now) + 1), 't', num(set))
if base ~= nil then
  redis.call('HSET', key, 'b', num(base))
end
expire(key, now, base or now, time(h[3]) or 0, 1000000 / rate, burst, tonumber(ARGV[3]))
return 1
`)

// onceScript is a script sent to Redis at most once a call: a reservation
// run twice reserves twice. go-redis sends a command again (MaxRetries, 3
// by default) after errors that may come when Redis has run it already (a
// read timeout, a connection reset before the reply), and then answers
// the second run's reply: each command of a onceScript tells go-redis not
// to. It replays one only when it closed the connection before writing
// it (its first send, then); any other failure fails the call at once.
type onceScript struct {
	src, hash string
}

func newOnceScript(src string) onceScript {
	return onceScript{src: src, hash: redis.NewScript(src).Hash()}
}

// onceCmd is a command go-redis does not send again once written.
type onceCmd struct{ *redis.Cmd }

// NoRetry tells go-redis not to send the command again.
func (onceCmd) NoRetry() bool { return true }

// Run runs the script on keys with args as [redis.Script.Run] does (by
// its hash, and by its source if Redis does not hold it: a NOSCRIPT reply
// means it did not run), each command sent once.
func (sc onceScript) Run(ctx context.Context, c redis.UniversalClient, keys []string, args ...any) *redis.Cmd {
	cmd := sc.eval(ctx, c, "evalsha", sc.hash, keys, args)
	if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd = sc.eval(ctx, c, "eval", sc.src, keys, args)
	}
	return cmd
}

// eval sends one EVAL or EVALSHA, its arguments laid out as go-redis's
// own Eval lays them, so that a Cluster routes it by its key.
func (onceScript) eval(ctx context.Context, c redis.UniversalClient, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	cmd := redis.NewCmd(ctx, append(a, args...)...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	_ = c.Process(ctx, onceCmd{cmd})
	return cmd
}
