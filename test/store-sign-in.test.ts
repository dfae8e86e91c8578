import t from 'tap'
import { externalUserId, randomId, sha256 } from '../src/ids.js'
import { MemoryStore } from '../src/store/index.js'
import { SIGN_IN_ATTEMPTS_MAX } from '../src/store/memory.js'
import { SIGN_IN_ATTEMPT_TTL_MS } from '../src/store/types.js'
import { keysUnder, testRedisUrl, uniqueKeyPrefix, withRedis } from './helpers/redis.js'
import { ACCESS_TTL, STORES, elapse, redisStore } from './helpers/stores.js'

// What signing in through an OpenID provider keeps in the store: accounts without a password, linked
// by (issuer, sub); and the browser sign-ins under way, each taken once.

for (const [kind, open] of STORES) {
  t.test(`${kind} store: external accounts and sign-in attempts`, async (t) => {
    t.test('an external account: created without a password, its profile replaced at each sign-in, its epoch kept', async (t) => {
      const store = await open(t)
      const id = externalUserId('https://issuer.example/', `sub-${randomId()}`)
      t.equal(await store.saveExternalAccount({ id, username: 'first', email: 'a@example.test', roles: ['user', 'admin'] }, 'epoch-1'), 'epoch-1')
      t.same(await store.getUser(id), { id, username: 'first', email: 'a@example.test', roles: ['user', 'admin'], passwordHash: '', epoch: 'epoch-1' })
      t.equal(await store.saveExternalAccount({ id, username: 'renamed', email: null, roles: ['user'] }, 'epoch-2'), 'epoch-1', 'the account keeps its epoch')
      t.same(await store.getUser(id), { id, username: 'renamed', email: null, roles: ['user'], passwordHash: '', epoch: 'epoch-1' }, 'roles taken away at the provider are gone here too')
      // A session works as for any account: the rotation reads the roles the last sign-in wrote.
      const sessionId = randomId()
      const refreshHash = sha256(randomId())
      t.same(await store.createSession({ userId: id, sessionId, refreshHash, expiresAt: Date.now() + 60_000, maxSessionsPerUser: 10, accessTokenTtl: ACCESS_TTL }), { ended: [] })
      await store.saveExternalAccount({ id, username: 'renamed', email: null, roles: ['user', 'auditor'] }, 'epoch-3')
      t.match(await store.rotateRefreshToken({ userId: id, sessionId, presentedHash: refreshHash }, { hash: sha256(randomId()), sealed: '', graceMs: 0 }, ACCESS_TTL), { outcome: 'rotated', roles: ['user', 'auditor'], epoch: 'epoch-1' })
    })

    t.test('a sign-in attempt is taken once, and not after its time', async (t) => {
      const store = await open(t)
      const id = sha256(randomId())
      t.equal(await store.takeSignInAttempt(id), null, 'unknown')
      await store.holdSignInAttempt(id, '{"held":1}', SIGN_IN_ATTEMPT_TTL_MS)
      const takes = await Promise.all([store.takeSignInAttempt(id), store.takeSignInAttempt(id), store.takeSignInAttempt(id)])
      t.same(takes.sort(), ['{"held":1}', null, null].sort(), 'three at once: one gets it')
      t.equal(await store.takeSignInAttempt(id), null, 'and it is gone')
      const brief = sha256(randomId())
      await store.holdSignInAttempt(brief, 'x', 50)
      await elapse(store, 120)
      t.equal(await store.takeSignInAttempt(brief), null, 'expired')
    })
  })
}

t.test('redis: a sign-in attempt is one key outside every user\'s hash tag, with a TTL of ten minutes; an external account has no password', async (t) => {
  const prefix = uniqueKeyPrefix()
  const store = await redisStore(t, prefix)
  const id = sha256(randomId())
  await store.holdSignInAttempt(id, 'held', SIGN_IN_ATTEMPT_TTL_MS)
  const userId = externalUserId('https://issuer.example/', 'sub')
  await store.saveExternalAccount({ id: userId, username: 'u', email: null, roles: ['user'] }, 'e')
  await withRedis(await testRedisUrl(), async (redis) => {
    t.same((await keysUnder(redis, prefix)).sort(), [`${prefix}oidc-sign-in:${id}`, `${prefix}{user:${userId}}:account`].sort())
    const ttl = await redis.pttl(`${prefix}oidc-sign-in:${id}`)
    t.ok(ttl > SIGN_IN_ATTEMPT_TTL_MS - 5000 && ttl <= SIGN_IN_ATTEMPT_TTL_MS, `expires in ten minutes (${ttl} ms)`)
    t.same(await redis.hgetall(`${prefix}{user:${userId}}:account`), { id: userId, passwordHash: '', username: 'u', email: '', roles: '["user"]', epoch: 'e' })
    t.equal(await redis.pttl(`${prefix}{user:${userId}}:account`), -1, 'accounts are permanent')
  })
  t.equal(await store.takeSignInAttempt(id), 'held')
  await withRedis(await testRedisUrl(), async (redis) => {
    t.equal(await redis.exists(`${prefix}oidc-sign-in:${id}`), 0, 'taken: gone from Redis')
  })
})

t.test('memory: sign-in attempts left unfinished are swept', async (t) => {
  let now = 1_000_000
  const store = new MemoryStore(() => now)
  t.teardown(() => store.close())
  for (let i = 0; i < 5; i++) await store.holdSignInAttempt(`attempt-${i}`, 'x', SIGN_IN_ATTEMPT_TTL_MS)
  t.equal(store.size.signInAttempts, 5)
  now += SIGN_IN_ATTEMPT_TTL_MS
  store.sweep()
  t.equal(store.size.signInAttempts, 0)
})

t.test('memory: however fast sign-ins start, the attempts held are bounded (the oldest is forgotten)', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  for (let i = 0; i <= SIGN_IN_ATTEMPTS_MAX; i++) await store.holdSignInAttempt(`attempt-${i}`, 'x', SIGN_IN_ATTEMPT_TTL_MS)
  t.equal(store.size.signInAttempts, SIGN_IN_ATTEMPTS_MAX)
  t.equal(await store.takeSignInAttempt('attempt-0'), null, 'the oldest is gone')
  t.equal(await store.takeSignInAttempt(`attempt-${SIGN_IN_ATTEMPTS_MAX}`), 'x', 'the newest is there')
})
