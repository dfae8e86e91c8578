import t from 'tap'
import { randomId, sha256 } from '../src/ids.js'
import { keysUnder, testRedisUrl, uniqueKeyPrefix, withRedis } from './helpers/redis.js'
import { ACCESS_TTL, HOUR, STORES, denied, presented, redisStore, strict, userSession } from './helpers/stores.js'

// Sessions a user can see and end: what each records, how rotation moves its expiry within its
// absolute bound, and ending one or all of them. Both stores, the same contract.

const CLIENT = { userAgent: 'Mozilla/5.0 (test)', ip: '203.0.113.9' }

for (const [kind, open] of STORES) {
  t.test(`${kind} store: sessions`, async (t) => {
    t.test('a session records its creation, last use and client; a listing shows the live ones only', async (t) => {
      const store = await open(t)
      const before = Date.now()
      const first = await userSession(store, { client: CLIENT, maxExpiresAt: Date.now() + 2 * HOUR })
      const bare = await userSession(store, { userId: first.userId })
      const ended = await userSession(store, { userId: first.userId })
      await store.endSession(first.userId, ended.sessionId, ACCESS_TTL)
      await userSession(store) // another account's
      const listed = (await store.listSessions(first.userId)).sort((a, b) => a.id < b.id ? -1 : 1)
      const expected = [
        { id: first.sessionId, expiresAt: first.expiresAt, ...CLIENT },
        { id: bare.sessionId, expiresAt: bare.expiresAt, userAgent: null, ip: null },
      ].sort((a, b) => a.id < b.id ? -1 : 1)
      t.match(listed, expected, 'the two live sessions of this account, with their clients')
      for (const s of listed) {
        t.ok(s.createdAt !== null && s.createdAt >= before && s.createdAt <= Date.now(), 'createdAt is now')
        t.equal(s.lastUsedAt, s.createdAt, 'last used: at login')
      }
      t.same(await store.listSessions(randomId()), [], 'an account with none (or none at all): empty')
    })

    t.test('a rotation moves the expiry to now + the idle bound, never past the absolute one, and records its use', async (t) => {
      const store = await open(t)
      const s = await userSession(store, { expiresAt: Date.now() + 60_000, maxExpiresAt: Date.now() + 90_000, client: CLIENT })
      const next = sha256(randomId())
      const rotated = await store.rotateRefreshToken(presented(s), { ...strict(next), idleMs: 80_000, client: { userAgent: 'curl/8', ip: null } }, ACCESS_TTL)
      t.equal(rotated.outcome, 'rotated')
      const expiresAt = (rotated as { expiresAt: number }).expiresAt
      t.ok(expiresAt > Date.now() + 79_000 && expiresAt <= Date.now() + 80_000, 'now + the idle bound')
      const [listed] = await store.listSessions(s.userId)
      t.equal(listed?.expiresAt, expiresAt, 'the session itself moved')
      t.match(listed, { userAgent: 'curl/8', ip: null }, 'the client of the last refresh')
      t.ok((listed?.lastUsedAt ?? 0) >= (listed?.createdAt ?? Infinity), 'last used: at the refresh')
      const again = await store.rotateRefreshToken({ ...presented(s), presentedHash: next }, { ...strict(sha256(randomId())), idleMs: 200_000 }, ACCESS_TTL)
      t.ok(Math.abs((again as { expiresAt: number }).expiresAt - (s.maxExpiresAt as number)) <= 1, 'capped at the absolute bound')
      t.match((await store.listSessions(s.userId))[0], { userAgent: 'curl/8' }, 'a refresh that names no client keeps the last one')
    })

    t.test('a session created before sessions had an absolute bound keeps its expiry', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      const rotated = await store.rotateRefreshToken(presented(s), { ...strict(sha256(randomId())), idleMs: 10 * HOUR }, ACCESS_TTL)
      t.match(rotated, { outcome: 'rotated', expiresAt: s.expiresAt })
    })

    t.test('ending one session: only a live session of this account, which is then denied and cannot rotate', async (t) => {
      const store = await open(t)
      const mine = await userSession(store)
      const theirs = await userSession(store)
      t.equal(await store.endSession(mine.userId, theirs.sessionId, ACCESS_TTL), false, 'another account\'s session: not mine')
      t.equal(await store.endSession(mine.userId, randomId(), ACCESS_TTL), false, 'unknown')
      t.equal(await denied(store, theirs.userId, theirs.sessionId, 'j'), false, 'theirs lives on')
      t.equal(await store.endSession(mine.userId, mine.sessionId, ACCESS_TTL), true)
      t.equal(await denied(store, mine.userId, mine.sessionId, 'j'), true, 'its access tokens are denied')
      t.match(await store.rotateRefreshToken(presented(mine), strict(sha256(randomId())), ACCESS_TTL), { outcome: 'invalid' }, 'its refresh token is dead')
      t.equal(await store.endSession(mine.userId, mine.sessionId, ACCESS_TTL), false, 'ended twice: the second finds nothing')
      t.same(await store.listSessions(mine.userId), [])
    })

    t.test('ending all sessions of an account, or all but one', async (t) => {
      const store = await open(t)
      const kept = await userSession(store)
      const others = [await userSession(store, { userId: kept.userId }), await userSession(store, { userId: kept.userId })]
      const stranger = await userSession(store)
      const ended = await store.endSessions(kept.userId, ACCESS_TTL, { except: kept.sessionId })
      t.same(ended.sort(), others.map(s => s.sessionId).sort(), 'every other session')
      for (const s of others) t.equal(await denied(store, s.userId, s.sessionId, 'j'), true)
      t.equal(await denied(store, kept.userId, kept.sessionId, 'j'), false, 'the kept one lives')
      t.match(await store.rotateRefreshToken(presented(kept), strict(sha256(randomId())), ACCESS_TTL), { outcome: 'rotated' })
      t.same(await store.endSessions(kept.userId, ACCESS_TTL), [kept.sessionId], 'then all')
      t.same(await store.endSessions(kept.userId, ACCESS_TTL), [], 'none left')
      t.equal(await denied(store, stranger.userId, stranger.sessionId, 'j'), false, 'other accounts untouched')
    })

    t.test('a session is created only while the password its login verified is still the account\'s', async (t) => {
      const store = await open(t)
      const s = await userSession(store)
      t.same(await store.createSession({ ...s, sessionId: randomId(), passwordHash: 'h' }), { ended: [] }, 'verified against the stored hash: created')
      await store.replacePasswordHash(s.userId, 'h', 'h2')
      const late = { ...s, sessionId: randomId(), passwordHash: 'h' }
      t.equal(await store.createSession(late), null, 'the password changed meanwhile: refused')
      t.notOk((await store.listSessions(s.userId)).some(listed => listed.id === late.sessionId), 'and nothing was created')
    })

    t.test('ending sessions while they rotate: none survives, none is revived', async (t) => {
      const store = await open(t)
      const sessions = [await userSession(store)]
      for (let i = 0; i < 9; i++) sessions.push(await userSession(store, { userId: sessions[0]?.userId }))
      const userId = sessions[0]?.userId ?? ''
      const rotations = sessions.map(s => store.rotateRefreshToken(presented(s), { ...strict(sha256(randomId())), idleMs: HOUR }, ACCESS_TTL))
      const ending = store.endSessions(userId, ACCESS_TTL)
      await Promise.all([...rotations, ending])
      t.same(await store.listSessions(userId), [], 'nothing live')
      for (const s of sessions) t.equal(await denied(store, userId, s.sessionId, 'j'), true, 'every session denied')
    })
  })
}

t.test('redis: ended sessions leave no keys but their denial, and the index follows rotations', async (t) => {
  const prefix = uniqueKeyPrefix()
  const store = await redisStore(t, prefix)
  const s = await userSession(store, { expiresAt: Date.now() + 60_000, maxExpiresAt: Date.now() + HOUR })
  const other = await userSession(store, { userId: s.userId, expiresAt: Date.now() + 30_000, maxExpiresAt: Date.now() + HOUR })
  await store.rotateRefreshToken(presented(s), { ...strict(sha256(randomId())), idleMs: 120_000 }, ACCESS_TTL)
  const base = `${prefix}{user:${s.userId}}`
  await withRedis(await testRedisUrl(), async (redis) => {
    const score = Number(await redis.zscore(`${base}:sessions`, s.sessionId))
    t.ok(score > Date.now() + 119_000, 'the index scores the session by its new expiry')
    const indexTtl = await redis.pttl(`${base}:sessions`)
    t.ok(indexTtl > 119_000 && indexTtl <= 120_000, `the index lives as long as its longest session (${indexTtl} ms)`)
    const sessionTtl = await redis.pttl(`${base}:session:${s.sessionId}`)
    t.ok(sessionTtl > 119_000 && sessionTtl <= 120_000, 'the session key too')
    await store.endSessions(s.userId, ACCESS_TTL)
    const keys = (await keysUnder(redis, prefix)).sort()
    t.same(keys, [`${base}:account`, `${base}:deny:sid:${other.sessionId}`, `${base}:deny:sid:${s.sessionId}`].sort(), 'the account and the two denials (tombstones) only')
    t.ok(await redis.ttl(`${base}:deny:sid:${s.sessionId}`) <= ACCESS_TTL, 'a tombstone lives as long as the access tokens it denies')
  })
})

t.test('redis: ending sessions shortens the index\'s life to what is left in it, and a tombstone stops a revived session', async (t) => {
  const prefix = uniqueKeyPrefix()
  const store = await redisStore(t, prefix)
  const short = await userSession(store, { expiresAt: Date.now() + 60_000 })
  const long = await userSession(store, { userId: short.userId, expiresAt: Date.now() + 3_600_000 })
  const base = `${prefix}{user:${short.userId}}`
  await withRedis(await testRedisUrl(), async (redis) => {
    t.ok(await redis.pttl(`${base}:sessions`) > 3_590_000, 'the index lives as long as the long session')
    await store.endSession(short.userId, long.sessionId, ACCESS_TTL)
    const left = await redis.pttl(`${base}:sessions`)
    t.ok(left > 0 && left <= 60_000, `ending it: the index lives as long as the short one (${left} ms)`)
    await store.revokeSession({ userId: short.userId, sessionId: short.sessionId, accessTokenTtl: ACCESS_TTL })
    t.equal(await redis.exists(`${base}:sessions`), 0, 'the last one revoked: no index left')

    // A session key written back after its end (a writer that raced the end, or a restored backup):
    // its tombstone still refuses every rotation.
    await redis.hset(`${base}:session:${long.sessionId}`, 'refresh', long.refreshHash, 'expiresAt', String(long.expiresAt))
    t.match(await store.rotateRefreshToken(presented(long), strict(sha256(randomId())), ACCESS_TTL), { outcome: 'invalid' }, 'refused while the tombstone stands')
    t.equal(await redis.hget(`${base}:session:${long.sessionId}`, 'refresh'), long.refreshHash, 'and nothing was spent')
  })
})
