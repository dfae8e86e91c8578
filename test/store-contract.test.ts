import t from 'tap'
import { randomId, sha256 } from '../src/ids.js'
import { MemoryStore } from '../src/store/index.js'
import { keysUnder, testRedisUrl, uniqueKeyPrefix, withRedis } from './helpers/redis.js'
import { ACCESS_TTL, EPOCH, HOUR, STORES, denied, elapse, presented, redisStore, session, strict, userSession } from './helpers/stores.js'

/** The same contract, for the embedded store and for Redis. */
for (const [kind, open] of STORES) {
  t.test(`${kind} store contract`, async (t) => {
    t.test('users: created once, an existing account is never overwritten', async (t) => {
      const store = await open(t)
      const user = { id: randomId(), username: 'u', email: null, roles: ['user'], passwordHash: 'h1' }
      t.equal(await store.getUser(user.id), null)
      t.equal(await store.createUserIfAbsent(user), true)
      t.equal(await store.createUserIfAbsent({ ...user, passwordHash: 'h2', roles: ['admin'] }), false)
      t.same(await store.getUser(user.id), user)
      const withEmail = { ...user, id: randomId(), email: 'x@example.com' }
      await store.createUserIfAbsent(withEmail)
      t.same(await store.getUser(withEmail.id), withEmail)
    })

    t.test('access check: denylist and, when asked, the account without its password hash, in one answer', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      t.same(await store.checkAccess(s.userId, s.sessionId, 'j', { account: false }), { denied: false, accountExists: true, epoch: null }, 'not asked: that it exists, and its epoch (none yet)')
      t.same(await store.checkAccess(s.userId, s.sessionId, 'j', { account: true }),
        { denied: false, accountExists: true, epoch: null, account: { id: s.userId, username: `user-${s.userId}`, email: null, roles: ['user', 'editor'] } }, 'the account, as stored, but its hash')
      t.same(await store.checkAccess(randomId(), randomId(), 'j', { account: true }), { denied: false, accountExists: false, epoch: null, account: null }, 'an account that does not exist')
      t.same(await store.checkAccess(randomId(), randomId(), 'j', { account: false }), { denied: false, accountExists: false, epoch: null })
      t.equal(await store.ensureEpoch(s.userId, 'first'), 'first', 'an account without an epoch gets the one offered')
      t.equal(await store.ensureEpoch(s.userId, 'second'), 'first', 'and keeps it')
      t.equal(await store.ensureEpoch(randomId(), 'x'), null, 'no account: none, and nothing created')
      t.match(await store.checkAccess(s.userId, s.sessionId, 'j', { account: false }), { epoch: 'first' })
      const withEpoch = { id: randomId(), username: 'e', email: null, roles: [], passwordHash: 'h', epoch: 'born-with' }
      await store.createUserIfAbsent(withEpoch)
      t.same(await store.getUser(withEpoch.id), withEpoch, 'an account created with its epoch')
      const rotated = await store.rotateRefreshToken(presented(s), { ...strict(sha256(randomId())), epoch: 'unused' }, ACCESS_TTL)
      t.match(rotated, { outcome: 'rotated', epoch: 'first' }, 'a rotation answers the account\'s epoch')
      await store.revokeSession({ userId: s.userId, sessionId: s.sessionId, accessTokenTtl: ACCESS_TTL })
      t.same(await store.checkAccess(s.userId, s.sessionId, 'j', { account: true }), { denied: true }, 'denied: nothing more is read')
    })

    t.test('rotation: live token rotates, a spent one revokes, anything else is invalid', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      t.same(await store.rotateRefreshToken(presented(s, sha256('forged')), strict(sha256('x')), ACCESS_TTL), { outcome: 'invalid' })
      const next = sha256(randomId())
      t.same(await store.rotateRefreshToken(presented(s), strict(next), ACCESS_TTL), { outcome: 'rotated', expiresAt: s.expiresAt, roles: ['user', 'editor'], epoch: EPOCH })
      const third = sha256(randomId())
      t.same(await store.rotateRefreshToken(presented(s, next), strict(third), ACCESS_TTL), { outcome: 'rotated', expiresAt: s.expiresAt, roles: ['user', 'editor'], epoch: EPOCH })
      t.equal(await denied(store, s.userId, s.sessionId, randomId()), false)
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('y')), ACCESS_TTL), { outcome: 'reused' }, 'the first, spent token')
      t.equal(await denied(store, s.userId, s.sessionId, randomId()), true, 'the session is denied')
      t.same(await store.rotateRefreshToken(presented(s, third), strict(sha256('z')), ACCESS_TTL), { outcome: 'invalid' }, 'its live token is dead')
      t.same(await store.rotateRefreshToken({ ...presented(s), sessionId: randomId() }, strict(sha256('z')), ACCESS_TTL), { outcome: 'invalid' }, 'unknown session')
    })

    t.test('a session whose account is gone cannot rotate, and is revoked', async (t) => {
      const store = await open(t)
      const s = session()
      await store.createSession(s)
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('n')), ACCESS_TTL), { outcome: 'invalid' })
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), true)
    })

    t.test('rotation is atomic: of 50 concurrent rotations of one token, one wins', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const outcomes = await Promise.all(Array.from({ length: 50 }, () => store.rotateRefreshToken(presented(s), strict(sha256(randomId())), ACCESS_TTL)))
      t.equal(outcomes.filter(o => o.outcome === 'rotated').length, 1)
      t.equal(outcomes.filter(o => o.outcome === 'reused').length, 1, 'the first loser sees reuse and revokes')
      t.equal(outcomes.filter(o => o.outcome === 'invalid').length, 48, 'the rest find the session gone')
    })

    t.test('an expired session is invalid', async (t) => {
      const store = await open(t)
      const s = await userSession(store, { expiresAt: Date.now() + 300 })
      await elapse(store, 400)
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('n')), ACCESS_TTL), { outcome: 'invalid' })
    })

    t.test('revocation by refresh token: live or spent tokens revoke, others do not', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      t.equal(await store.revokeSessionByRefreshToken(presented(s, sha256('nope')), ACCESS_TTL), false)
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), false)
      const next = sha256(randomId())
      await store.rotateRefreshToken(presented(s), strict(next), ACCESS_TTL)
      t.equal(await store.revokeSessionByRefreshToken(presented(s), ACCESS_TTL), true, 'a spent token')
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), true)
      t.equal(await store.revokeSessionByRefreshToken(presented(s, next), ACCESS_TTL), false, 'nothing left to revoke')

      const other = session()
      await store.createSession(other)
      t.equal(await store.revokeSessionByRefreshToken(presented(other), ACCESS_TTL), true, 'the live token')
    })

    t.test('revokeSession denies the session and the access token, for their TTLs only', async (t) => {
      const store = await open(t)
      const s = session()
      await store.createSession(s)
      await store.revokeSession({ userId: s.userId, sessionId: s.sessionId, accessTokenTtl: 1, accessToken: { tokenId: 'jti-1', ttl: 2 } })
      t.equal(await denied(store, s.userId, s.sessionId, 'other'), true, 'by sid')
      t.equal(await denied(store, s.userId, 'other-session', 'jti-1'), true, 'by jti')
      t.equal(await denied(store, randomId(), s.sessionId, 'jti-1'), false, 'denials are per user')
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('n')), ACCESS_TTL), { outcome: 'invalid' }, 'its refresh token is gone')
      await elapse(store, 1100)
      t.equal(await denied(store, s.userId, s.sessionId, 'other'), false, 'the sid denial expired with the access-token lifetime')
      t.equal(await denied(store, s.userId, 'other-session', 'jti-1'), true, 'the jti denial lives its own TTL')
      await elapse(store, 1000)
      t.equal(await denied(store, s.userId, 'other-session', 'jti-1'), false)
    })

    t.test('spent tokens: the last 32 revoke the session, older ones are merely invalid', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const hashes = [s.refreshHash]
      for (let i = 0; i < 40; i++) {
        const next = sha256(randomId())
        t.equal((await store.rotateRefreshToken(presented(s, hashes.at(-1)), strict(next), ACCESS_TTL)).outcome, 'rotated')
        hashes.push(next)
      }
      // hashes[40] is live; hashes[8..39] are the last 32 spent; hashes[0..7] are forgotten.
      t.same(await store.rotateRefreshToken(presented(s, hashes[7]), strict(sha256('x')), ACCESS_TTL), { outcome: 'invalid' }, '33 rotations back: invalid')
      t.equal(await store.revokeSessionByRefreshToken(presented(s, hashes[0]), ACCESS_TTL), false, 'and it cannot end the session either')
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), false, 'nothing was revoked')
      t.equal((await store.rotateRefreshToken(presented(s, hashes[40]), strict(sha256('y')), ACCESS_TTL)).outcome, 'rotated', 'the live token still rotates')
      // Now hashes[9..40] are the last 32 spent.
      t.same(await store.rotateRefreshToken(presented(s, hashes[9]), strict(sha256('z')), ACCESS_TTL), { outcome: 'reused' }, '32 rotations back: reuse, the session is revoked')
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), true)

      const other = await userSession(store)
      const otherNext = sha256(randomId())
      await store.rotateRefreshToken(presented(other), strict(otherNext), ACCESS_TTL)
      t.equal(await store.revokeSessionByRefreshToken(presented(other), ACCESS_TTL), true, 'a recently spent token ends its session (logout, revoke)')
    })

    t.test('sessions per account: one beyond the bound ends the oldest, expired and ended ones do not count', async (t) => {
      const store = await open(t)
      const userId = randomId()
      await store.createUserIfAbsent({ id: userId, username: `u-${userId}`, email: null, roles: ['user'], passwordHash: 'h' })
      const bounded = (expiresAt: number) => ({ ...session(userId), expiresAt, maxSessionsPerUser: 3 })
      const soon = bounded(Date.now() + 200)
      t.same(await store.createSession(soon), { ended: [] })
      await elapse(store, 300)
      const sessions = [bounded(Date.now() + HOUR), bounded(Date.now() + HOUR + 1), bounded(Date.now() + HOUR + 2)]
      for (const s of sessions) t.same(await store.createSession(s), { ended: [] }, 'within the bound (the expired one does not count)')
      const fourth = bounded(Date.now() + HOUR + 3)
      t.same(await store.createSession(fourth), { ended: [sessions[0]?.sessionId] }, 'the fourth ends the oldest')
      const oldest = sessions[0] ?? soon
      t.equal(await denied(store, userId, oldest.sessionId, 'j'), true, 'whose access tokens are denied')
      t.same(await store.rotateRefreshToken(presented(oldest), strict(sha256('n')), ACCESS_TTL), { outcome: 'invalid' }, 'and whose refresh token is dead')
      await store.revokeSession({ userId, sessionId: fourth.sessionId, accessTokenTtl: ACCESS_TTL })
      t.same(await store.createSession(bounded(Date.now() + HOUR + 4)), { ended: [] }, 'an ended session frees its place')
      for (const s of [sessions[1], sessions[2]]) t.equal((await store.rotateRefreshToken(presented(s ?? soon), strict(sha256(randomId())), ACCESS_TTL)).outcome, 'rotated', 'the others live on')
      t.same(await store.createSession(session(randomId())), { ended: [] }, 'other accounts are counted apart')
    })

    t.test('sessions per account: concurrent logins end exactly the surplus', async (t) => {
      const store = await open(t)
      const userId = randomId()
      await store.createUserIfAbsent({ id: userId, username: `u-${userId}`, email: null, roles: ['user'], passwordHash: 'h' })
      const all = Array.from({ length: 12 }, (_, i) => ({ ...session(userId), expiresAt: Date.now() + HOUR + i, maxSessionsPerUser: 5 }))
      const results = await Promise.all(all.map(s => store.createSession(s)))
      t.equal(new Set(results.flatMap(r => r?.ended ?? [])).size, 7, '7 of 12 ended')
      const outcomes = await Promise.all(all.map(s => store.rotateRefreshToken(presented(s), strict(sha256(randomId())), ACCESS_TTL)))
      t.equal(outcomes.filter(o => o.outcome === 'rotated').length, 5, '5 live')
    })

    t.test('grace window: the just-spent token gets the same sealed successor while that successor is live, and nothing changes', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const next = sha256(randomId())
      t.same(await store.rotateRefreshToken(presented(s), { hash: next, sealed: 'sealed-successor', graceMs: 5000, epoch: EPOCH }, ACCESS_TTL), { outcome: 'rotated', expiresAt: s.expiresAt, roles: ['user', 'editor'], epoch: EPOCH })
      for (let i = 0; i < 3; i++) {
        t.same(await store.rotateRefreshToken(presented(s), { hash: sha256(randomId()), sealed: `another-${i}`, graceMs: 5000 }, ACCESS_TTL),
          { outcome: 'replayed', expiresAt: s.expiresAt, roles: ['user', 'editor'], sealed: 'sealed-successor', epoch: EPOCH }, `replay ${i + 1}: the first successor, sealed as it was stored`)
      }
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), false, 'nothing was revoked')
      const third = sha256(randomId())
      t.equal((await store.rotateRefreshToken(presented(s, next), { hash: third, sealed: 'sealed-third', graceMs: 5000 }, ACCESS_TTL)).outcome, 'rotated', 'the successor is still the live token')
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('x')), ACCESS_TTL), { outcome: 'reused' }, 'once the successor is spent, the first token is reuse')
      t.equal(await denied(store, s.userId, s.sessionId, 'j'), true, 'and the session is revoked')
      t.same(await store.rotateRefreshToken(presented(s, third), strict(sha256('y')), ACCESS_TTL), { outcome: 'invalid' }, 'its newest token with it')
    })

    t.test('grace window: past it, the spent token is reuse; strict rotation (0) never replays', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      await store.rotateRefreshToken(presented(s), { hash: sha256(randomId()), sealed: 'x', graceMs: 150 }, ACCESS_TTL)
      await elapse(store, 250)
      t.same(await store.rotateRefreshToken(presented(s), strict(sha256('z')), ACCESS_TTL), { outcome: 'reused' }, 'after the window')
      const strictSession = await userSession(store)
      await store.rotateRefreshToken(presented(strictSession), strict(sha256(randomId())), ACCESS_TTL)
      t.same(await store.rotateRefreshToken(presented(strictSession), strict(sha256('z')), ACCESS_TTL), { outcome: 'reused' }, 'strict: at once')
    })

    t.test('grace window: of 30 concurrent refreshes with one token, one rotates and 29 replay the same successor', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const outcomes = await Promise.all(Array.from({ length: 30 }, (_, i) => store.rotateRefreshToken(presented(s), { hash: sha256(`n${i}`), sealed: `sealed-${i}`, graceMs: 5000 }, ACCESS_TTL)))
      const rotated = outcomes.findIndex(o => o.outcome === 'rotated')
      t.equal(outcomes.filter(o => o.outcome === 'rotated').length, 1, 'one rotation')
      t.same([...new Set(outcomes.filter(o => o.outcome === 'replayed').map(o => o.outcome === 'replayed' ? o.sealed : ''))], [`sealed-${rotated}`], '29 replays, each with the winner\'s successor')
      t.equal((await store.rotateRefreshToken(presented(s, sha256(`n${rotated}`)), strict(sha256('m')), ACCESS_TTL)).outcome, 'rotated', 'whose successor is the live token')
    })

    t.test('grace window: logout with the just-spent token still ends the session', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const next = sha256(randomId())
      await store.rotateRefreshToken(presented(s), { hash: next, sealed: 'x', graceMs: 5000 }, ACCESS_TTL)
      t.equal(await store.revokeSessionByRefreshToken(presented(s), ACCESS_TTL), true)
      t.same(await store.rotateRefreshToken(presented(s), { hash: sha256('q'), sealed: 'y', graceMs: 5000 }, ACCESS_TTL), { outcome: 'invalid' }, 'no replay of an ended session')
      t.same(await store.rotateRefreshToken(presented(s, next), strict(sha256('r')), ACCESS_TTL), { outcome: 'invalid' })
    })

    t.test('ping answers', async (t) => {
      const store = await open(t)
      await t.resolves(store.ping())
    })
  })
}

t.test('redis: every key is under the user hash tag, and every key but the account has a TTL no longer than what it guards', async (t) => {
  const prefix = uniqueKeyPrefix()
  const store = await redisStore(t, prefix)
  const userId = randomId()
  await store.createUserIfAbsent({ id: userId, username: 'k', email: null, roles: [], passwordHash: 'h' })
  const live = session(userId)
  await store.createSession(live)
  await store.rotateRefreshToken(presented(live), strict(sha256(randomId())), ACCESS_TTL) // → spent set
  const revoked = session(userId)
  await store.createSession(revoked)
  await store.revokeSession({ userId, sessionId: revoked.sessionId, accessTokenTtl: ACCESS_TTL, accessToken: { tokenId: 'jti', ttl: 120 } })

  await withRedis(await testRedisUrl(), async (redis) => {
    const keys = (await keysUnder(redis, prefix)).sort()
    const base = `${prefix}{user:${userId}}`
    t.same(keys, [
      `${base}:account`,
      `${base}:deny:jti:jti`,
      `${base}:deny:sid:${revoked.sessionId}`,
      `${base}:session:${live.sessionId}`,
      `${base}:sessions`,
      `${base}:spent-recent:${live.sessionId}`,
    ].sort())
    t.equal(await redis.pttl(`${base}:account`), -1, 'accounts are permanent')
    const hourLeft = live.expiresAt - Date.now()
    for (const key of [`${base}:session:${live.sessionId}`, `${base}:spent-recent:${live.sessionId}`]) {
      const ttl = await redis.pttl(key)
      t.ok(ttl > 0 && ttl <= hourLeft + 5, `${key}: expires with the session (${ttl} ms)`)
    }
    // The index lives as long as the longest-lived session it held: the revoked one, created a little
    // later (ending a session does not shorten the index's life; a busy machine makes "a little" ms).
    const indexTtl = await redis.pttl(`${base}:sessions`)
    t.ok(indexTtl > 0 && indexTtl <= Math.max(live.expiresAt, revoked.expiresAt) - Date.now() + 5, `${base}:sessions: expires with the longest-lived session (${indexTtl} ms)`)
    const sidTtl = await redis.ttl(`${base}:deny:sid:${revoked.sessionId}`)
    t.ok(sidTtl > 0 && sidTtl <= ACCESS_TTL, `sid denial lives at most an access-token lifetime (${sidTtl} s)`)
    const jtiTtl = await redis.ttl(`${base}:deny:jti:jti`)
    t.ok(jtiTtl > 0 && jtiTtl <= 120, `jti denial lives at most the token's remaining life (${jtiTtl} s)`)
    t.equal(await redis.hget(`${base}:session:${live.sessionId}`, 'refresh') === live.refreshHash, false, 'the live hash moved on')
  })
})

t.test('redis: the replay record never outlives its session', async (t) => {
  const prefix = uniqueKeyPrefix()
  const store = await redisStore(t, prefix)
  const s = await userSession(store, { expiresAt: Date.now() + 400 })
  await store.rotateRefreshToken(presented(s), { hash: sha256(randomId()), sealed: 'sealed', graceMs: 30_000 }, ACCESS_TTL)
  const ttl = await withRedis(await testRedisUrl(), redis => redis.pttl(`${prefix}{user:${s.userId}}:replay:${s.sessionId}`))
  t.ok(ttl > 0 && ttl <= 400, `the record expires with the session (${ttl} ms left), not 30 s later`)
})

t.test('memory: expired entries are swept, so memory stays bounded', async (t) => {
  let now = 0
  const store = new MemoryStore(() => now)
  t.teardown(() => store.close())
  for (let i = 0; i < 100; i++) {
    const s = { userId: 'u', sessionId: `s${i}`, refreshHash: 'h', expiresAt: 10_000, maxSessionsPerUser: 100, accessTokenTtl: 5 }
    await store.createSession(s)
    if (i % 2 === 0) await store.revokeSession({ userId: 'u', sessionId: s.sessionId, accessTokenTtl: 5, accessToken: { tokenId: `j${i}`, ttl: 5 } })
  }
  t.same(store.size, { sessions: 50, denied: 100, users: 0, spentHashes: 0, signInAttempts: 0 })
  now = 6_000
  store.sweep()
  t.same(store.size, { sessions: 50, denied: 0, users: 0, spentHashes: 0, signInAttempts: 0 }, 'denials past their TTL are gone')
  now = 10_000
  store.sweep()
  t.same(store.size, { sessions: 0, denied: 0, users: 0, spentHashes: 0, signInAttempts: 0 }, 'sessions past their expiry are gone')
})
