import t, { type Test } from 'tap'
import { StoreUnavailableError } from '../src/errors.js'
import { randomId, sha256 } from '../src/ids.js'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens } from './helpers/http.js'
import { SlowRedisProxy, accountWithSession, testRedisStore, testRedisUrl, uniqueKeyPrefix } from './helpers/redis.js'

/** Each reply alone is within a command's 500 ms bound; three in a row are not within a second. */
const REPLY_DELAY_MS = 450

/** An app on a Redis that answers every command in REPLY_DELAY_MS, and one on the same Redis directly. */
async function slowAndDirectApps (t: Test) {
  const proxy = await SlowRedisProxy.start(await testRedisUrl(), REPLY_DELAY_MS)
  t.teardown(() => proxy.stop()) // after the apps' own teardowns (last in, first out)
  const shared = { REDIS_KEY_PREFIX: uniqueKeyPrefix() }
  const direct = await buildTestApp(t, 'redis', shared)
  const slow = await buildTestApp(t, 'redis', { ...shared, REDIS_URL: proxy.url })
  return { direct: direct.app, slow: slow.app }
}

t.test('a request\'s waits on a slow Redis add up to at most a second from its arrival, then 503', async (t) => {
  const { direct, slow } = await slowAndDirectApps(t)

  t.test('login: limit count, account read and session write, each answered in 450 ms', async (t) => {
    const started = Date.now()
    const response = await slow.inject({ method: 'POST', url: '/auth/login', payload: USERS.alice })
    const elapsed = Date.now() - started
    t.equal(response.statusCode, 503, 'the third round trip does not fit in the second')
    t.match(response.json(), { code: 'STORE_UNAVAILABLE' })
    t.equal(response.headers['retry-after'], '1')
    // A second of store waits, plus one argon2 check (its queue time does not count as a store wait).
    t.ok(elapsed < 1400, `answered after ${elapsed} ms (three round trips alone would take 1350 ms, plus hashing)`)
  })

  t.test('logout: ping, then two revocations', async (t) => {
    // Two sessions, made directly: the access token ends one, the refresh token the other.
    const first = await loginTokens(direct, USERS.alice)
    const second = await loginTokens(direct, USERS.alice)
    const started = Date.now()
    const response = await slow.inject({ method: 'POST', url: '/auth/logout', headers: bearer(first.access_token), payload: { refresh_token: second.refresh_token } })
    const elapsed = Date.now() - started
    t.equal(response.statusCode, 503)
    t.match(response.json(), { code: 'STORE_UNAVAILABLE' })
    t.ok(elapsed < 1150, `answered after ${elapsed} ms (1350 ms without the budget)`)
    // Nothing told the client it was logged out; a retry on a healthy Redis finishes the job.
    t.equal((await direct.inject({ method: 'POST', url: '/auth/logout', headers: bearer(first.access_token), payload: { refresh_token: second.refresh_token } })).statusCode, 204)
    t.equal((await direct.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: second.refresh_token } })).statusCode, 401, 'the second session is ended')
  })
})

t.test('the Redis store: a deadline bounds each command, and a rotation its caller gave up on never runs', async (t) => {
  const { store } = await testRedisStore(t)
  const { userId, sessionId, refreshHash } = await accountWithSession(store)

  const started = Date.now()
  await t.rejects(store.getUser(userId, Date.now() - 1), StoreUnavailableError, 'a deadline already past: refused without waiting')
  t.ok(Date.now() - started < 50, 'at once')

  const presented = { userId, sessionId, presentedHash: refreshHash }
  const next = { hash: sha256(randomId()), sealed: '', graceMs: 0 }
  // Less time left than the rotation's safety margin (100 ms): Redis would run it after the caller gave up.
  await t.rejects(store.rotateRefreshToken(presented, next, 900, Date.now() + 50), StoreUnavailableError, 'too close to the deadline: 503')
  t.match(await store.rotateRefreshToken(presented, next, 900, Date.now() + 1000), { outcome: 'rotated' }, 'and the token was not spent by it')
})
