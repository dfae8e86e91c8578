import t, { type Test } from 'tap'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { userIdFor } from '../src/ids.js'
import { eventually } from './helpers/eventually.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { PrivateRedis, withRedis } from './helpers/redis.js'
import { ACCESS_TOKEN_HEADER, claimsOf, forgeJwt } from './helpers/tokens.js'

// A Redis that loses its data (a restart without persistence, a flush, a failover to an empty
// replica) must never bring a revoked token back: tokens carry their account's epoch, and an account
// recreated after the loss has another.

async function twoInstances (t: Test) {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const shared = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'loss:' }
  const a = (await buildTestApp(t, 'redis', shared)).app
  const b = (await buildTestApp(t, 'redis', shared)).app
  return { redis, a, b }
}

for (const loss of ['a restart without persistence', 'a FLUSHALL (no reconnect)'] as const) {
  t.test(`${loss}: a token revoked before stays rejected, older tokens are refused, fresh logins work on both instances`, async (t) => {
    const { redis, a, b } = await twoInstances(t)
    const revoked = await loginTokens(a, USERS.alice)
    const live = await loginTokens(b, USERS.alice)
    const admin = await loginTokens(a, USERS.root)
    t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked.access_token) })).statusCode, 204)
    for (const app of [a, b]) {
      t.equal((await profile(app, bearer(revoked.access_token))).statusCode, 401, 'revoked before the loss')
      t.equal((await profile(app, bearer(live.access_token))).statusCode, 200, 'live before the loss')
    }

    if (loss === 'a restart without persistence') {
      await redis.stop()
      await redis.restart()
    } else {
      await withRedis(redis.url, client => client.flushall())
    }

    // Fresh logins work on both (users seeded again: on reconnect, or on first use after a flush).
    for (const app of [a, b]) {
      t.ok(await eventually(async () => (await login(app, USERS.alice.username, USERS.alice.password)).statusCode === 200), 'a fresh login works')
    }
    for (const app of [a, b]) {
      t.equal((await profile(app, bearer(revoked.access_token))).statusCode, 401, 'the token revoked before the loss is still refused')
      t.equal((await profile(app, bearer(live.access_token))).statusCode, 401, 'an older token is refused too')
      t.equal((await app.inject({ url: '/api/admin', headers: bearer(admin.access_token) })).statusCode, 401, 'on every protected route')
      t.equal((await refresh(app, live.refresh_token)).statusCode, 401, 'and sessions from before the loss are gone')
    }
    const fresh = await loginTokens(b, USERS.alice)
    t.equal((await profile(a, bearer(fresh.access_token))).statusCode, 200, 'a token from after the loss works on the other instance')
  })
}

t.test('tokens issued before epochs: good while their account has none, then answered as expired (refresh)', async (t) => {
  const { redis, a, b } = await twoInstances(t)
  const current = await loginTokens(a, USERS.alice)
  const { epoch, ...legacyClaims } = claimsOf(current.access_token)
  t.match(epoch, /^[\w-]{22}$/)
  const legacy = forgeJwt(ACCESS_TOKEN_HEADER, legacyClaims, TEST_SECRET)
  const account = `loss:{user:${userIdFor(USERS.alice.username)}}:account`

  // The account as it was stored before epochs.
  await withRedis(redis.url, client => client.hdel(account, 'epoch'))
  t.equal((await profile(a, bearer(legacy))).statusCode, 200, 'an account without an epoch: a token without one is good')
  t.equal((await profile(b, bearer(current.access_token))).statusCode, 401, 'a token naming an epoch the account does not have is not')

  const rotated = await refresh(b, current.refresh_token)
  t.equal(rotated.statusCode, 200, 'its session refreshes')
  const newEpoch = claimsOf(rotated.json().access_token).epoch
  t.match(newEpoch, /^[\w-]{22}$/, 'into a token with the epoch the account got then')
  t.equal(await withRedis(redis.url, client => client.hget(account, 'epoch')), newEpoch, 'stored with the account')
  t.equal((await profile(a, bearer(rotated.json().access_token))).statusCode, 200)

  const refused = await profile(a, bearer(legacy))
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'ACCESS_TOKEN_EXPIRED', 'now the token without one is answered as expired: the client refreshes, it is not signed out')
})
