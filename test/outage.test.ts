import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { sha256 } from '../src/ids.js'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { PrivateRedis, SlowRedisProxy, testRedisUrl, withRedis } from './helpers/redis.js'

/** The contract: with Redis gone or stalled, answer 503 JSON within one second. */
const DEADLINE_MS = 1000

async function timed (request: Promise<LightMyRequestResponse>): Promise<{ response: LightMyRequestResponse, ms: number }> {
  const started = performance.now()
  const response = await request
  return { response, ms: performance.now() - started }
}

async function eventually (t: Test, what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check()) {
      t.pass(what)
      return
    }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  t.fail(`${what}: not within ${timeoutMs} ms`)
}

function expectFailClosed (t: Test, name: string, result: { response: LightMyRequestResponse, ms: number }) {
  t.equal(result.response.statusCode, 503, `${name}: 503`)
  t.match(result.response.headers['content-type'], /^application\/json/, `${name}: JSON`)
  t.same(result.response.json(), { statusCode: 503, error: 'Service Unavailable', message: 'The token store is unavailable; try again shortly', code: 'STORE_UNAVAILABLE' }, `${name}: body`)
  t.ok(result.ms < DEADLINE_MS, `${name}: answered in ${Math.round(result.ms)} ms`)
}

/**
 * Every store-backed route at once. Logout uses a session of its own: a logout that timed out may
 * still run when a stalled Redis wakes up (the caller was told 503, not that nothing happened).
 */
async function failClosedEverywhere (t: Test, app: FastifyInstance, tokens: { access_token: string, refresh_token: string }, spare: { access_token: string }) {
  const results = await Promise.all([
    timed(profile(app, bearer(tokens.access_token))),
    timed(app.inject({ url: '/api/admin', headers: bearer(tokens.access_token) })),
    timed(login(app, USERS.alice.username, USERS.alice.password)),
    timed(refresh(app, tokens.refresh_token)),
    timed(app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(spare.access_token) })),
    timed(app.inject({ method: 'POST', url: '/auth/logout', headers: bearer('garbage') })),
    timed(app.inject({ url: '/ready' })),
  ])
  // A garbage-token logout fails like a valid one: a fast 204 beside a 503 would tell them apart.
  const names = ['profile', 'admin', 'login', 'refresh', 'logout', 'logout with a garbage token', 'ready']
  results.forEach((result, i) => expectFailClosed(t, String(names[i]), result))
  t.equal((await app.inject({ url: '/health' })).statusCode, 200, 'liveness does not depend on Redis')
  // A rate-limited route that needs no store: the limiter's own Redis call fails open, and fast.
  const docs = await timed(app.inject({ url: '/docs/json' }))
  t.equal(docs.response.statusCode, 200, 'the rate limiter lets requests through when Redis fails')
  t.ok(docs.ms < DEADLINE_MS, `and does not hold them up (${Math.round(docs.ms)} ms)`)
}

t.test('a stalled Redis (SIGSTOP): 503 within a second, then recovery on SIGCONT', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop()) // teardowns run last-in first-out: the app's (which still talks to Redis) first
  const { app, config } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  const tokens = await loginTokens(app, USERS.alice)
  const spare = await loginTokens(app, USERS.alice)

  redis.pause()
  await failClosedEverywhere(t, app, tokens, spare)
  redis.resume()

  await eventually(t, 'protected routes answer again', async () => (await profile(app, bearer(tokens.access_token))).statusCode === 200)
  // The rotation written before the stall ran when Redis woke up, after its caller had heard 503: it
  // must have changed nothing (a spent token would now be answered as a replay, hiding the damage).
  const [userId, sessionId] = tokens.refresh_token.split('.')
  const base = `${config.redisKeyPrefix}{user:${userId}}`
  const stored = await withRedis(redis.url, async client => [await client.hget(`${base}:session:${sessionId}`, 'refresh'), await client.llen(`${base}:spent-recent:${sessionId}`)])
  t.same(stored, [sha256(tokens.refresh_token), 0], 'the session\'s live token is still the one that got the 503, nothing was spent')
  const retried = await refresh(app, tokens.refresh_token)
  t.equal(retried.statusCode, 200, 'the refresh that got a 503 can be retried with the same token: the late rotation changed nothing')
  t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 200)
})

t.test('a Redis that went away: 503 at once, then recovery when it comes back (empty)', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop()) // teardowns run last-in first-out: the app's (which still talks to Redis) first
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  const tokens = await loginTokens(app, USERS.alice)

  await redis.stop()
  await failClosedEverywhere(t, app, tokens, tokens)
  await redis.restart()

  await eventually(t, 'login works again (users re-seeded into the empty Redis)', async () =>
    (await login(app, USERS.alice.username, USERS.alice.password)).statusCode === 200)
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 401, 'an access token from before the loss is refused: its account was recreated with another epoch')
  t.equal((await refresh(app, tokens.refresh_token)).statusCode, 401, 'sessions were lost with the data: their refresh tokens fail closed')
})

t.test('users re-seeding after an empty restart: logins answer 503 while it fails, never 401, and recover', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const lines: string[] = []
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url, LOG_LEVEL: 'info' }, { logStream: { write: (line: string) => { lines.push(line) } } })

  await redis.stop()
  await redis.restart('--maxmemory', '1', '--maxmemory-policy', 'noeviction') // back empty, and refusing writes
  await eventually(t, 'the failed re-seed is logged', async () => lines.some(line => line.includes('could not re-seed users')))
  const refused = await login(app, USERS.alice.username, USERS.alice.password)
  t.equal(refused.statusCode, 503, 'a correct login while the users cannot be recreated: 503, not 401')

  await withRedis(redis.url, async (client) => { await client.config('SET', 'maxmemory', '0') })
  t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 200, 'the next login retries the seeding and succeeds')
  t.equal((await login(app, USERS.root.username, USERS.root.password)).statusCode, 200)

  const storeErrors = lines.filter(line => line.includes('token store unavailable') || line.includes('re-seed'))
  t.ok(storeErrors.length > 0, 'store failures are logged')
  t.same(storeErrors.filter(line => /"args"|previousErrors|\{user:/.test(line)), [], 'without command arguments, keys or hashes')
})

t.test('a Redis gone silent with its connections still open: 503s, then both connections are replaced and everything answers again', async (t) => {
  const proxy = await SlowRedisProxy.start(await testRedisUrl(), 0)
  t.teardown(() => proxy.stop()) // after the app's own teardown (last in, first out)
  const { stream, records } = logCapture()
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: proxy.url, LOG_LEVEL: 'info' }, { logStream: stream })
  const tokens = await loginTokens(app, USERS.alice)
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200)

  // A vanished host or a black-holing network: no RST, no FIN, no answer, on the connections open now.
  proxy.silenceExisting()
  const [protectedRoute, ...logins] = await Promise.all([
    timed(profile(app, bearer(tokens.access_token))),
    ...['198.51.100.1', '198.51.100.2', '198.51.100.3'].map(ip => timed(app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: USERS.alice }))),
  ])
  expectFailClosed(t, 'a protected route', protectedRoute as Awaited<ReturnType<typeof timed>>)
  logins.forEach((answer, i) => expectFailClosed(t, `login ${i + 1} of 3 at once`, answer))

  const silencedAt = Date.now()
  await eventually(t, 'protected routes answer again, on a new connection', async () => (await profile(app, bearer(tokens.access_token))).statusCode === 200, 3000)
  await eventually(t, 'logins too', async () => (await login(app, USERS.alice.username, USERS.alice.password)).statusCode === 200, 3000)
  t.ok(Date.now() - silencedAt < 1500, `within ${Date.now() - silencedAt} ms (the proxy never answers the old connections' FIN)`)
  const dropped = records().filter(line => line.msg === 'Redis connection dropped; reconnecting').map(line => line.reason)
  t.same(dropped.sort(), ['batched connection: no answer within 500 ms', 'no answer within 500 ms'], 'each connection was dropped once, and said why')
})
