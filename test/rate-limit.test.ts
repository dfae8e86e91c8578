import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { userIdFor } from '../src/ids.js'
import { CORE_STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, refresh } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { PrivateRedis, SlowRedisProxy, keysUnder, testRedisUrl, uniqueKeyPrefix, withRedis } from './helpers/redis.js'

const LIMITS = { RATE_LIMIT_MAX: '1000', RATE_LIMIT_LOGIN_MAX: '5', RATE_LIMIT_REFRESH_MAX: '60' }

function loginFrom (app: FastifyInstance, ip: string, username: string, password: string): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/login', remoteAddress: ip, payload: { username, password } })
}

function assertLimited (t: Test, response: LightMyRequestResponse, limit: number, what: string) {
  t.equal(response.statusCode, 429, `${what}: 429`)
  t.match(response.headers['content-type'], /^application\/json/)
  t.match(response.json(), { statusCode: 429, error: 'Too Many Requests', code: 'RATE_LIMITED', message: /retry in/ }, `${what}: JSON error body`)
  const retryAfter = Number(response.headers['retry-after'])
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `${what}: Retry-After ${String(response.headers['retry-after'])} is 1..60 s`)
  t.equal(response.headers['x-ratelimit-limit'], String(limit), `${what}: X-RateLimit-Limit`)
  t.equal(response.headers['x-ratelimit-remaining'], '0', `${what}: X-RateLimit-Remaining`)
}

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    t.test('login: RATE_LIMIT_LOGIN_MAX attempts per minute per client IP and username, then 429 even with the right password', async (t) => {
      const { app } = await buildTestApp(t, store, LIMITS)
      for (let i = 1; i <= 5; i++) {
        const response = await loginFrom(app, '198.51.100.1', 'alice', `wrong-${i}`)
        t.equal(response.statusCode, 401, `attempt ${i} is checked`)
        t.equal(response.headers['x-ratelimit-remaining'], String(5 - i), `attempt ${i}: remaining`)
      }
      assertLimited(t, await loginFrom(app, '198.51.100.1', 'alice', USERS.alice.password), 5, 'sixth attempt')
      t.equal((await loginFrom(app, '198.51.100.1', 'root', USERS.root.password)).statusCode, 200, 'another user from the same IP is not locked out')
      t.equal((await loginFrom(app, '198.51.100.2', 'alice', USERS.alice.password)).statusCode, 200, 'the same user from another IP is not locked out')
      t.equal((await loginFrom(app, '198.51.100.1', 'nobody', 'x')).statusCode, 401, 'unknown usernames are counted on their own too')
    })

    t.test('a body that fails validation is refused before the login limit counts it', async (t) => {
      const { app } = await buildTestApp(t, store, LIMITS)
      for (let i = 0; i < 8; i++) {
        t.equal((await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice' } })).statusCode, 400)
      }
      t.equal((await loginFrom(app, '127.0.0.1', 'alice', USERS.alice.password)).statusCode, 200, 'the budget is untouched')
    })

    t.test('refresh: RATE_LIMIT_REFRESH_MAX calls per minute per client IP', async (t) => {
      const { app } = await buildTestApp(t, store, { ...LIMITS, RATE_LIMIT_REFRESH_MAX: '3' })
      let tokens = await loginTokens(app, USERS.alice)
      for (let i = 1; i <= 3; i++) {
        const response = await refresh(app, tokens.refresh_token)
        t.equal(response.statusCode, 200, `refresh ${i}`)
        tokens = response.json()
      }
      const limited = await refresh(app, tokens.refresh_token)
      assertLimited(t, limited, 3, 'fourth refresh')
      const other = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '203.0.113.9', payload: { refresh_token: tokens.refresh_token } })
      t.equal(other.statusCode, 200, 'the limited call spent nothing: the token still works from another IP')
    })

    t.test('RATE_LIMIT_MAX: the API-wide limit per client IP, over every route but /health and /ready', async (t) => {
      const { app } = await buildTestApp(t, store, { ...LIMITS, RATE_LIMIT_MAX: '3' })
      for (let i = 0; i < 5; i++) {
        t.equal((await app.inject('/health')).statusCode, 200, '/health is never limited')
        t.equal((await app.inject('/ready')).statusCode, 200, '/ready is never limited')
      }
      const tokens = await loginTokens(app, USERS.alice)
      t.equal((await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) })).statusCode, 200)
      t.equal((await app.inject({ url: '/api/profile' })).statusCode, 401, 'third request of the minute')
      const limited = await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) })
      assertLimited(t, limited, 3, 'fourth request')
      t.equal(limited.headers['www-authenticate'], undefined, 'a 429 is not an authentication challenge')
      t.equal((await app.inject({ url: '/api/profile', remoteAddress: '192.0.2.1', headers: bearer(tokens.access_token) })).statusCode, 200, 'another client is unaffected')
    })

    t.test('RATE_LIMIT_MAX=0 turns every limit off', async (t) => {
      const { app } = await buildTestApp(t, store, { ...LIMITS, RATE_LIMIT_MAX: '0', RATE_LIMIT_LOGIN_MAX: '1' })
      for (let i = 0; i < 4; i++) {
        const response = await loginFrom(app, '127.0.0.1', 'alice', 'wrong')
        t.equal(response.statusCode, 401)
        t.equal(response.headers['x-ratelimit-limit'], undefined, 'no rate-limit headers')
      }
    })
  })
}

/** Two instances on one Redis, as behind a load balancer. */
async function twoInstances (t: Test, env: NodeJS.ProcessEnv) {
  const shared = { ...env, REDIS_KEY_PREFIX: uniqueKeyPrefix() }
  const a = await buildTestApp(t, 'redis', shared)
  const b = await buildTestApp(t, 'redis', shared)
  return { a: a.app, b: b.app, config: a.config }
}

t.test('login attempts spread over two instances add up', async (t) => {
  const { a, b, config } = await twoInstances(t, LIMITS)
  for (let i = 0; i < 5; i++) {
    t.equal((await loginFrom(i % 2 === 0 ? a : b, '198.51.100.7', 'alice', 'wrong')).statusCode, 401, `attempt ${i + 1} on ${i % 2 === 0 ? 'A' : 'B'}`)
  }
  assertLimited(t, await loginFrom(b, '198.51.100.7', 'alice', USERS.alice.password), 5, 'the sixth, on B')
  assertLimited(t, await loginFrom(a, '198.51.100.7', 'alice', USERS.alice.password), 5, 'and on A')

  const counters = await withRedis(config.redisUrl!, async (redis) => {
    const keys = await keysUnder(redis, `${config.redisKeyPrefix}rate:login:`)
    return Promise.all(keys.map(async key => ({ key, value: await redis.get(key), ttl: await redis.pttl(key) })))
  })
  t.equal(counters.length, 1, 'one counter in Redis for this IP and username')
  t.match(counters[0]?.key, /:rate:login:\{user:[A-Za-z0-9_-]{22}\}:198\.51\.100\.7$/, 'keyed by user id (under the user\'s hash tag) and IP, never the raw username')
  t.equal(counters[0]?.value, '7', 'every attempt counted once')
  t.ok(counters[0] !== undefined && counters[0].ttl > 0 && counters[0].ttl <= 60_000, 'the counter expires within the minute')
})

t.test('the API-wide and refresh limits are shared by two instances too', async (t) => {
  const { a, b } = await twoInstances(t, { ...LIMITS, RATE_LIMIT_MAX: '4', RATE_LIMIT_REFRESH_MAX: '2' })
  const tokens = await loginTokens(a, USERS.alice) // 1 API-wide
  const first = await refresh(b, tokens.refresh_token) // 2, refresh 1
  t.equal(first.statusCode, 200)
  const second = await refresh(a, first.json().refresh_token) // 3, refresh 2
  t.equal(second.statusCode, 200)
  assertLimited(t, await refresh(b, second.json().refresh_token), 2, 'third refresh, on B') // 4, refresh 3
  assertLimited(t, await a.inject({ url: '/api/profile', headers: bearer(second.json().access_token) }), 4, 'fifth request, on A')
})

t.test('the limiter fails open when its Redis errors: the request goes on to the checks behind it', async (t) => {
  const { app, config } = await buildTestApp(t, 'redis', { ...LIMITS, RATE_LIMIT_MAX: '2' })
  const tokens = await loginTokens(app, USERS.alice)
  // A counter Redis cannot increment makes every limiter call fail, with Redis itself up.
  await withRedis(config.redisUrl!, redis => redis.set(`${config.redisKeyPrefix}rate:api:127.0.0.1`, 'not-a-number', 'EX', 60))
  for (let i = 0; i < 4; i++) {
    const response = await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) })
    t.equal(response.statusCode, 200, `request ${i + 1} goes through`)
  }
  t.equal((await app.inject({ url: '/api/profile' })).statusCode, 401, 'and the auth check behind it still refuses')
})

t.test('the login limit fails closed: when its count fails, no password is checked (503), and that is logged once', async (t) => {
  const { stream, records } = logCapture()
  const { app, config } = await buildTestApp(t, 'redis', { ...LIMITS, LOG_LEVEL: 'info' }, { logStream: stream })
  const counter = `${config.redisKeyPrefix}rate:login:{user:${userIdFor('alice')}}:198.51.100.30`
  await withRedis(config.redisUrl!, redis => redis.set(counter, 'not-a-number', 'EX', 60))
  for (const password of ['wrong-1', 'wrong-2', USERS.alice.password]) {
    const response = await loginFrom(app, '198.51.100.30', 'alice', password)
    t.equal(response.statusCode, 503, `${password === USERS.alice.password ? 'the right password' : 'a wrong password'}: 503, whatever the password`)
    t.match(response.json(), { statusCode: 503, code: 'STORE_UNAVAILABLE' })
    t.equal(response.headers['retry-after'], '1')
  }
  t.equal((await loginFrom(app, '198.51.100.31', 'alice', USERS.alice.password)).statusCode, 200, 'a counter that works lets the same user in')
  const warnings = records().filter(line => line.msg === 'rate limiter cannot count: refusing requests with 503')
  t.equal(warnings.length, 1, 'one warning for the window, not one per request')
  t.match(warnings[0], { level: 40, limit: 'login', reason: String })
  t.notOk(JSON.stringify(warnings).includes(counter), 'the warning does not quote the command (its key)')
})

t.test('a Redis that serves reads but refuses writes (full, noeviction) is no password oracle: every login 503, protected reads go on', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const { stream, records } = logCapture()
  const { app } = await buildTestApp(t, 'redis', { ...LIMITS, REDIS_URL: redis.url, RATE_LIMIT_LOGIN_MAX: '2', LOG_LEVEL: 'info' }, { logStream: stream })
  const tokens = await loginTokens(app, USERS.alice)
  await withRedis(redis.url, async (client) => { await client.config('SET', 'maxmemory-policy', 'noeviction'); await client.config('SET', 'maxmemory', '1') })
  t.teardown(() => withRedis(redis.url, async (client) => { await client.config('SET', 'maxmemory', '0') }))

  const attempts = []
  for (let i = 0; i < 6; i++) attempts.push((await loginFrom(app, '198.51.100.40', 'alice', `guess-${i}`)).statusCode)
  t.same(attempts, [503, 503, 503, 503, 503, 503], 'wrong passwords are not checked while they cannot be counted')
  t.equal((await loginFrom(app, '198.51.100.40', 'alice', USERS.alice.password)).statusCode, 503, 'nor the right one: the answers do not differ')
  t.equal((await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) })).statusCode, 200, 'the API-wide limit fails open: a read-only request still works')
  t.equal((await refresh(app, tokens.refresh_token)).statusCode, 503, 'a refresh, which must write, fails closed')
  const warnings = records().filter(line => typeof line.msg === 'string' && line.msg.startsWith('rate limiter cannot count'))
  t.same(warnings.map(line => line.limit).sort(), ['api', 'login', 'refresh'], 'each failing limit warned about, once')
  t.match(warnings.find(line => line.limit === 'login')?.reason, /OOM/, 'with Redis\'s reason')
})

t.test('a slow Redis (slower than the API-wide limit waits, within the store\'s timeout): logins still work and are still counted', async (t) => {
  const proxy = await SlowRedisProxy.start(await testRedisUrl(), 250)
  t.teardown(() => proxy.stop()) // after the app's own teardown (last in, first out)
  const { stream, records } = logCapture()
  const { app, config } = await buildTestApp(t, 'redis', { ...LIMITS, REDIS_URL: proxy.url, RATE_LIMIT_LOGIN_MAX: '2', LOG_LEVEL: 'info' }, { logStream: stream })
  t.equal((await loginFrom(app, '198.51.100.50', 'alice', 'wrong')).statusCode, 401, 'a wrong password: 401, not 503')
  t.equal((await loginFrom(app, '198.51.100.50', 'alice', USERS.alice.password)).statusCode, 200, 'the right one: 200')
  assertLimited(t, await loginFrom(app, '198.51.100.50', 'alice', USERS.alice.password), 2, 'the third attempt: the login limit counted every one')
  const warnings = records().filter(line => typeof line.msg === 'string' && line.msg.startsWith('rate limiter cannot count'))
  t.same(warnings.map(line => [line.limit, line.msg]), [['api', 'rate limiter cannot count: letting requests through uncounted']], 'only the API-wide limit gave up waiting, and said so once')
  const counter = await withRedis(await testRedisUrl(), redis => redis.get(`${config.redisKeyPrefix}rate:login:{user:${userIdFor('alice')}}:198.51.100.50`))
  t.equal(counter, '3', 'what Redis holds')
})

t.test('a later route with a rate limit of its own (config.rateLimit) counts apart, in Redis', async (t) => {
  const { app, config } = await buildTestApp(t, 'redis', LIMITS, {
    later: scope => scope.get('/api/reports', { config: { rateLimit: { max: 1, timeWindow: 60_000 } } }, async () => ({ ok: true })),
  })
  t.equal((await app.inject('/api/reports')).statusCode, 200)
  assertLimited(t, await app.inject('/api/reports'), 1, 'its second request')
  t.equal((await app.inject('/health')).statusCode, 200, 'other routes are not affected')
  const keys = await withRedis(config.redisUrl!, redis => keysUnder(redis, `${config.redisKeyPrefix}rate:`))
  t.ok(keys.includes(`${config.redisKeyPrefix}rate:api:GET/api/reports-127.0.0.1`), `its own counter, named by its route (${keys.join(', ')})`)
})
