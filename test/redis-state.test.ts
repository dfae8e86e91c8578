import t from 'tap'
import { sha256, userIdFor } from '../src/ids.js'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh } from './helpers/http.js'
import { PrivateRedis, keysUnder, withRedis } from './helpers/redis.js'

/** What Redis holds after real requests: keys, TTLs, hash tags, and never a token in clear. */
t.test('after login, refresh, reuse and both kinds of logout', async (t) => {
  const { app, config } = await buildTestApp(t, 'redis')
  const issued: string[] = []
  const keep = <T extends { access_token: string, refresh_token?: string }>(tokens: T): T => {
    issued.push(tokens.access_token, ...(tokens.refresh_token === undefined ? [] : [tokens.refresh_token]))
    return tokens
  }

  const live = keep(await loginTokens(app, USERS.alice))
  const rotated = keep((await refresh(app, live.refresh_token)).json())
  const reused = keep(await loginTokens(app, USERS.alice))
  const reusedNext = keep((await refresh(app, reused.refresh_token)).json())
  keep((await refresh(app, reusedNext.refresh_token)).json())
  t.equal((await refresh(app, reused.refresh_token)).statusCode, 401, 'reuse: revoked by the rotation script')
  // Each rotated once before its logout, so that the logout has a replay record to delete.
  const byRefresh = keep(await loginTokens(app, USERS.alice))
  const byRefreshNext = keep((await refresh(app, byRefresh.refresh_token)).json())
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: byRefreshNext.refresh_token } })
  const byAccessFirst = keep(await loginTokens(app, USERS.alice))
  const byAccess = keep((await refresh(app, byAccessFirst.refresh_token)).json())
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(byAccess.access_token) })

  const userId = live.refresh_token.split('.')[0]
  const sid = (token: { refresh_token: string }) => token.refresh_token.split('.')[1]
  const jti = (token: { access_token: string }) => JSON.parse(Buffer.from(String(token.access_token.split('.')[1]), 'base64url').toString()).jti
  const base = `${config.redisKeyPrefix}{user:${userId}}`

  await withRedis(String(config.redisUrl), async (redis) => {
    const all = (await keysUnder(redis, config.redisKeyPrefix)).sort()
    // Rate-limit counters: one per limit and client, each expiring within its minute.
    const counters = all.filter(key => key.startsWith(`${config.redisKeyPrefix}rate:`))
    t.same(counters, [
      `${config.redisKeyPrefix}rate:api:127.0.0.1`,
      `${config.redisKeyPrefix}rate:login:{user:${userIdFor(USERS.alice.username)}}:127.0.0.1`,
      `${config.redisKeyPrefix}rate:refresh:127.0.0.1`,
    ], 'rate-limit counters: API-wide per IP, login per user (under its hash tag) and IP, refresh per IP')
    for (const key of counters) {
      const ttl = await redis.pttl(key)
      t.ok(ttl > 0 && ttl <= 60_000, `${key.slice(config.redisKeyPrefix.length)}: expires within the minute (${ttl} ms)`)
    }
    const keys = all.filter(key => !counters.includes(key))
    const expected = [
      `${base}:account`,
      `${base}:session:${sid(live)}`,
      `${base}:spent-recent:${sid(live)}`,
      `${base}:replay:${sid(live)}`,
      `${base}:sessions`,
      `${base}:deny:sid:${sid(reused)}`,
      `${base}:deny:sid:${sid(byRefresh)}`,
      `${base}:deny:sid:${sid(byAccess)}`,
      `${base}:deny:jti:${jti(byAccess)}`,
      `${config.redisKeyPrefix}{user:${userIdFor(USERS.root.username)}}:account`,
    ].sort()
    t.same(keys, expected, "alice's keys, all under her hash tag (and root's account); revoked sessions left only denials")

    const session = await redis.hgetall(`${base}:session:${sid(live)}`)
    t.same(Object.keys(session).sort(), ['createdAt', 'expiresAt', 'ip', 'lastUsedAt', 'maxExpiresAt', 'refresh', 'userAgent'], 'the live session\'s fields')
    t.equal(session.refresh, sha256(rotated.refresh_token), 'the SHA-256 of its newest refresh token, never the token')
    t.match(session, { ip: '127.0.0.1', userAgent: 'lightMyRequest' }, 'who used it last')
    const [createdAt, lastUsedAt, expiresAt, maxExpiresAt] = ['createdAt', 'lastUsedAt', 'expiresAt', 'maxExpiresAt'].map(field => Number(session[field]))
    t.ok(createdAt! <= lastUsedAt!, 'created, then used by the refresh')
    t.ok(Math.abs(expiresAt! - (lastUsedAt! + config.refreshTokenTtl * 1000)) <= 1, 'it ends REFRESH_TOKEN_TTL after its last use')
    t.equal(maxExpiresAt, createdAt! + config.sessionMaxAge * 1000, 'and SESSION_MAX_AGE after its login at most')
    t.same(await redis.lrange(`${base}:spent-recent:${sid(live)}`, 0, -1), [sha256(live.refresh_token)], 'spent tokens: hashes only')
    t.same(await redis.zrange(`${base}:sessions`, '0', '-1'), [sid(live)], 'the account\'s session index holds the live session only: reuse and both logouts took theirs out')
    const [spentHash, successorHash, sealed] = String(await redis.get(`${base}:replay:${sid(live)}`)).split('|')
    t.same([spentHash, successorHash], [sha256(live.refresh_token), sha256(rotated.refresh_token)], 'the replay record: the spent token\'s hash and its successor\'s')
    t.match(sealed, /^[\w-]{100,}$/, 'and the successor sealed (base64url), never in clear')
    const replayTtl = await redis.pttl(`${base}:replay:${sid(live)}`)
    t.ok(replayTtl > 0 && replayTtl <= config.refreshReuseGrace * 1000, `the replay record lives no longer than the grace window (${replayTtl} ms)`)

    t.equal(await redis.pttl(`${base}:account`), -1, 'the account alone is permanent (docs/decisions.md)')
    for (const key of keys.filter(k => k.includes(':session') || k.includes(':spent-recent:'))) {
      const ttl = await redis.ttl(key)
      t.ok(ttl > 0 && ttl <= config.refreshTokenTtl, `${key.slice(base.length)}: expires with the session (${ttl} s)`)
    }
    for (const key of keys.filter(k => k.includes(':deny:'))) {
      const ttl = await redis.ttl(key)
      t.ok(ttl > 0 && ttl <= config.accessTokenTtl, `${key.slice(base.length)}: lives no longer than an access token (${ttl} s)`)
    }

    const everything = [...keys, ...(await Promise.all(keys.map(async (key) => JSON.stringify(await dump(redis, key)))))].join('\n')
    for (const token of issued) {
      const secret = token.split('.').at(-1) ?? token
      t.notOk(everything.includes(secret), `no issued token (…${secret.slice(-6)}) is stored in clear`)
    }
  })
})

async function dump (redis: import('ioredis').Redis, key: string): Promise<unknown> {
  const type = await redis.type(key)
  if (type === 'hash') return redis.hgetall(key)
  if (type === 'list') return redis.lrange(key, 0, -1)
  if (type === 'zset') return redis.zrange(key, '0', '-1')
  return redis.get(key)
}

t.test('a protected request costs two commands in one write: the rate-limit count and one read-only check (denylist and the account\'s epoch)', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  const tokens = await loginTokens(app, USERS.root)
  await withRedis(redis.url, async (client) => {
    const stats = async () => {
      const info = await client.info('commandstats')
      const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
      return { exists: calls('exists'), hmget: calls('hmget'), evalsha: calls('evalsha'), inScript: calls('incr') + calls('pttl') + calls('pexpire') + calls('exists') + calls('hmget'), all: [...info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)].filter(([, name]) => name !== 'info').reduce((sum, [, , n]) => sum + Number(n), 0) }
    }
    const before = await stats()
    t.equal((await app.inject({ url: '/api/admin', headers: bearer(tokens.access_token) })).statusCode, 200)
    const after = await stats()
    t.equal(after.evalsha - before.evalsha, 2, 'two scripts: the rate-limit count (INCR and its expiry in one step) and the check')
    t.equal(after.exists - before.exists, 1, 'the check: one EXISTS on sid and jti together')
    t.equal(after.hmget - before.hmget, 1, 'and one HMGET of the account (its id and epoch)')
    t.equal(after.all - before.all - (after.inScript - before.inScript), 2, 'and nothing else (what the scripts run happens inside Redis)')
    t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200)
  })
})

t.test('a flood of readiness probes costs one PING at a time, and each probe gets its answer', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  await withRedis(redis.url, async (client) => {
    const pings = async () => Number(/cmdstat_ping:calls=(\d+)/.exec(await client.info('commandstats'))?.[1] ?? 0)
    const before = await pings()
    const answers = await Promise.all(Array.from({ length: 50 }, () => app.inject({ url: '/ready' })))
    t.same([...new Set(answers.map(answer => answer.statusCode))], [200], 'all 50 ready')
    const sent = await pings() - before
    t.ok(sent >= 1 && sent < 50, `${sent} PING(s) for 50 concurrent probes`)
  })
})
