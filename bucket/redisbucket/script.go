package redisbucket

import "github.com/redis/go-redis/v9"

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
//
// Numbers are written with %.17g: Lua's own tostring keeps 14 digits, and a
// time in microseconds needs 16.
//
// Every script ends by setting the key to expire when the bucket would be
// full again and no pause holds, plus the margin (ARGV[last]): an idle key
// costs nothing, and a state worth keeping (a pause, a lowered rate, a
// queue of reservations) outlives it.
const scriptHead = `
-- Redis 5 and 6 replicate a script that reads TIME only by its effects
-- when asked; Redis 7 always does, and ignores this.
redis.replicate_commands()
local function num(x) return string.format('%.17g', x) end
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function expire(key, now, base, pause, every, burst, margin)
  local full = math.max(base, pause, now) + burst * every
  redis.call('PEXPIRE', key, math.ceil((full - now) / 1000 + margin))
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
var reserveScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local n = tonumber(ARGV[1])
local h = redis.call('HMGET', key, 'b', 'r', 'u', 'p', 's')
local rate = tonumber(h[2]) or tonumber(ARGV[2])
local burst = tonumber(h[3]) or tonumber(ARGV[3])
local pause = tonumber(h[4]) or 0
local seq = tonumber(h[5]) or 0
local every = 1000000 / rate
local now = clock()
local base = tonumber(h[1])
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
  return {0, math.ceil(wait), seq, num(rate)}
end
seq = seq + 1
redis.call('HSET', key, 'b', num(after), 's', seq)
if h[2] == false then
  redis.call('HSET', key, 'r', num(rate), 'u', num(burst))
end
expire(key, now, after, pause, every, burst, tonumber(ARGV[5]))
return {1, math.ceil(wait), seq, num(rate)}
`)

// cancelScript gives back ARGV[2] tokens of reservation ARGV[1] if it is
// still the latest on the key: no reservation made after it was told a
// time that the give-back would now contradict. The key's sequence number
// steps back, so the reservation before it, if it too is cancelled, gives
// back its tokens as well. It answers 1 when the tokens were given back.
var cancelScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 's')
local base, rate, seq = tonumber(h[1]), tonumber(h[2]), tonumber(h[3])
if base == nil or rate == nil or seq ~= tonumber(ARGV[1]) then
  return 0
end
redis.call('HSET', key, 'b', num(base - tonumber(ARGV[2]) * 1000000 / rate), 's', seq - 1)
return 1
`)

// pauseScript holds the bucket for ARGV[1] µs from the server's now, unless
// a longer pause already holds. ARGV: wait µs, rate, burst (if new), margin.
var pauseScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 'u', 'p')
local rate = tonumber(h[2]) or tonumber(ARGV[2])
local burst = tonumber(h[3]) or tonumber(ARGV[3])
local now = clock()
local pause = math.max(tonumber(h[4]) or 0, now + tonumber(ARGV[1]))
redis.call('HSET', key, 'p', num(pause), 'r', num(rate), 'u', num(burst))
expire(key, now, tonumber(h[1]) or now, pause, 1000000 / rate, burst, tonumber(ARGV[4]))
return 1
`)

// rateScript sets the rate and burst, keeping the tokens the bucket holds
// (a queue of reservations already told their times keeps them). Cancels
// of reservations made before it no longer give back: their tokens were
// counted at the old rate. ARGV: rate, burst, margin.
var rateScript = redis.NewScript(scriptHead + `
local key = KEYS[1]
local h = redis.call('HMGET', key, 'b', 'r', 'p', 's')
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = clock()
local base = tonumber(h[1])
local old = tonumber(h[2])
if base ~= nil and old ~= nil and base < now then
  base = now - (now - base) * old / rate
end
redis.call('HSET', key, 'r', num(rate), 'u', num(burst), 's', (tonumber(h[4]) or 0) + 1)
if base ~= nil then
  redis.call('HSET', key, 'b', num(base))
end
expire(key, now, base or now, tonumber(h[3]) or 0, 1000000 / rate, burst, tonumber(ARGV[3]))
return 1
`)
