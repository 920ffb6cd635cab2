// An OpenAI-shaped chat completions endpoint behind express-rate-limit: a
// fixed window per Authorization header, of STEADY_QUOTA requests every
// STEADY_WINDOW_MS milliseconds (100 per 10 s by default). Each path shows
// the limit in one header dialect:
//
//   /draft7/v1/chat/completions  RateLimit and RateLimit-Policy, IETF draft 7
//   /draft8/v1/chat/completions  RateLimit and RateLimit-Policy, IETF draft 8
//   /legacy/v1/chat/completions  X-RateLimit-Limit, -Remaining, -Reset (Unix time)
//
// Every 429 carries Retry-After. Each path has a limiter of its own, so
// their counts never mix. GET /ready answers 204. The server listens on a
// free loopback port, prints it as the first line of stdout, and exits when
// stdin closes, so it never outlives the test that started it.
import express from 'express'
import { rateLimit } from 'express-rate-limit'

const positive = (name, fallback) => {
  const v = Number(process.env[name] ?? fallback)
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} must be a positive integer, not ${process.env[name]}`)
  return v
}
const limit = positive('STEADY_QUOTA', 100)
const windowMs = positive('STEADY_WINDOW_MS', 10_000)

const completion = JSON.stringify({
  id: 'chatcmpl-loopback',
  object: 'chat.completion',
  created: 0,
  model: 'loopback',
  choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
})

// byKey keys the limit on the API key, as a provider does, and not on the
// client's address: every test run comes from 127.0.0.1.
const byKey = (req) => req.get('authorization') ?? 'anonymous'

const limiter = (headers) => rateLimit({ windowMs, limit, keyGenerator: byKey, ...headers })

const app = express()
app.disable('x-powered-by')
app.set('etag', false)
const answer = (req, res) => res.type('application/json').send(completion)
app.get('/ready', (req, res) => res.status(204).end())
app.post('/draft7/v1/chat/completions', limiter({ standardHeaders: 'draft-7', legacyHeaders: false }), answer)
app.post('/draft8/v1/chat/completions', limiter({ standardHeaders: 'draft-8', legacyHeaders: false }), answer)
app.post('/legacy/v1/chat/completions', limiter({ standardHeaders: false, legacyHeaders: true }), answer)

const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`)
})
server.keepAliveTimeout = 60_000
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
