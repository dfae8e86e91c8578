import type { LightMyRequestResponse } from 'fastify'
import t from 'tap'
import { randomId, sha256, userIdFor } from '../src/ids.js'
import { RedisStore } from '../src/store/index.js'
import { accessCheckKeys, keysFor } from '../src/store/keys.js'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile } from './helpers/http.js'
import { PrivateRedis, SlowRedisProxy, accountWithSession, testRedisStore, testRedisUrl, withRedis } from './helpers/redis.js'

// The protected hot path on Redis: one write carries a request's rate-limit count and its access
// check (denylist, and the account where the route needs it), and the limiter still decides first.

/** Runs `during` and returns how many batched writes and commands it cost. */
async function batched (store: RedisStore, during: () => Promise<unknown>) {
  const before = store.batchStats
  await during()
  const after = store.batchStats
  return { writes: after.writes - before.writes, commands: after.commands - before.commands }
}

const busyFor = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) { /* a long synchronous task */ }
}

t.test('one protected request: one write with its count and its access check', async (t) => {
  const { app } = await buildTestApp(t, 'redis')
  const store = app.store as RedisStore
  const { access_token: token } = await loginTokens(app, USERS.root)
  let answer: LightMyRequestResponse | undefined
  t.same(await batched(store, async () => { answer = await profile(app, bearer(token)) }), { writes: 1, commands: 2 }, '/api/profile: the count and the denylist + account script')
  t.equal(answer?.statusCode, 200)
  t.same(await batched(store, () => app.inject({ url: '/api/admin', headers: bearer(token) })), { writes: 1, commands: 2 }, '/api/admin: the count and the denylist')
  const many = await batched(store, () => Promise.all(Array.from({ length: 50 }, () => profile(app, bearer(token)))))
  t.equal(many.commands, 100, '50 requests at once: 100 commands')
  t.ok(many.writes <= 5, `in ${many.writes} writes`)
})

t.test('the limiter decides first: over the limit, a revoked token gets 429, not 401', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { RATE_LIMIT_MAX: '3' })
  const { access_token: token } = await loginTokens(app, USERS.alice)
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(token), remoteAddress: '192.0.2.9' })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await profile(app, bearer(token))).statusCode)
  t.same(statuses, [401, 401, 429], 'revoked: 401 while under the limit (login and two calls used it), then 429')
})

t.test('a busy event loop does not turn a prompt answer into a 503, batched or not', async (t) => {
  const { store } = await testRedisStore(t)
  const { userId, sessionId, refreshHash } = await accountWithSession(store, 'starved')

  // Each call's command leaves first; then the loop is blocked past the 500 ms timeout.
  const check = store.checkAccess(userId, sessionId, 'j', { account: true })
  setImmediate(() => busyFor(700))
  t.same(await check, { denied: false, accountExists: true, epoch: null, account: { id: userId, username: 'starved', email: null, roles: ['user'] } }, 'the batched access check')

  const rotation = store.rotateRefreshToken({ userId, sessionId, presentedHash: refreshHash }, { hash: sha256(randomId()), sealed: '', graceMs: 0 }, 900)
  busyFor(700)
  t.match(await rotation, { outcome: 'rotated' }, 'a rotation (ioredis, its own timeout)')
})

t.test('the hot path names its keys as the rest of the store does', async (t) => {
  const keys = keysFor('p:', 'u')
  t.same(accessCheckKeys('p:', 'u', 's', 'j'), [keys.deniedSession('s'), keys.deniedToken('j'), keys.account])
})

t.test('a valid token of an account deleted since: /api/profile refuses it with the challenge, in the same read', async (t) => {
  const { app, config } = await buildTestApp(t, 'redis')
  const { access_token: token } = await loginTokens(app, USERS.alice)
  await withRedis(String(config.redisUrl), r => r.del(keysFor(config.redisKeyPrefix, userIdFor(USERS.alice.username)).account))
  const answer = await profile(app, bearer(token))
  t.equal(answer.statusCode, 401)
  t.equal(answer.json().code, 'INVALID_ACCESS_TOKEN')
  t.equal(answer.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="The account of this token no longer exists"')
})

t.test('a busy event loop does not turn a healthy Redis into 503s: the requests in flight answer 200, counted', async (t) => {
  // Replies held 50 ms: the commands are surely written, and their answers not yet read, when the loop blocks.
  const proxy = await SlowRedisProxy.start(await testRedisUrl(), 50)
  t.teardown(() => proxy.stop())
  const { app } = await buildTestApp(t, 'redis', { RATE_LIMIT_MAX: '100', REDIS_URL: proxy.url })
  const store = app.store as unknown as RedisStore
  const { access_token: token } = await loginTokens(app, USERS.root)
  const writes = store.batchStats.writes
  // The loop is then blocked past every timeout (the API-wide count's 150 ms, the check's 500 ms).
  const answers = [profile(app, bearer(token)), app.inject({ url: '/api/admin', headers: bearer(token) })]
  // Blocked once Redis has answered and the proxy holds the answer back: on a loaded machine a fixed
  // short wait could block the loop before the proxy (in this process) had even forwarded the commands.
  const heldBefore = proxy.held
  const waitedFrom = Date.now()
  while (proxy.held === heldBefore && Date.now() - waitedFrom < 2000) await new Promise(resolve => setImmediate(resolve))
  t.ok(proxy.held > heldBefore, 'Redis has answered; the answer is held back')
  t.equal(store.batchStats.writes, writes + 1, 'both requests\' commands were written, in one write')
  busyFor(700)
  const [profileAnswer, adminAnswer] = await Promise.all(answers)
  t.equal(profileAnswer?.statusCode, 200, '/api/profile')
  t.equal(adminAnswer?.statusCode, 200, '/api/admin')
  // Login and the two calls: the count was answered and used, not skipped as failed.
  t.same([profileAnswer?.headers['x-ratelimit-remaining'], adminAnswer?.headers['x-ratelimit-remaining']].sort(), ['97', '98'], 'both were counted')
})

t.test('a stall under a stream of requests (one batch per turn): every request answers 503 within a second of its own arrival', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  const { access_token: token } = await loginTokens(app, USERS.root)
  redis.pause()
  const answers: Array<Promise<{ status: number, ms: number }>> = []
  // 50 requests to both routes, each in a turn of its own, over ~0.6 s: batches stack behind the stalled one.
  for (let i = 0; i < 50; i++) {
    const started = performance.now()
    const request = i % 2 === 0 ? profile(app, bearer(token)) : app.inject({ url: '/api/admin', headers: bearer(token) })
    answers.push(request.then(answer => ({ status: answer.statusCode, ms: performance.now() - started })))
    await new Promise(resolve => setTimeout(resolve, 12))
  }
  const settled = await Promise.all(answers)
  redis.resume()
  t.same([...new Set(settled.map(a => a.status))], [503], 'all 503')
  const slowest = Math.max(...settled.map(a => a.ms))
  t.ok(slowest < 1000, `the slowest answered ${Math.round(slowest)} ms after its arrival`)
})
