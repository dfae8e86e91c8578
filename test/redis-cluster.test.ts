import t from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { userIdFor } from '../src/ids.js'
import { keysFor } from '../src/store/keys.js'
import { eventually } from './helpers/eventually.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { privateRedisCluster } from './helpers/redis-cluster.js'

// The store on a Redis Cluster of the test's own (three masters, no replicas) when a master fails:
// readiness, a master that restarts empty or is flushed, a master gone silent.
// (Topology changes and credentials: redis-cluster-topology.test.ts.)

const PREFIX = 'cluster:'
const aliceAccount = keysFor(PREFIX, userIdFor(USERS.alice.username)).account

t.test('/ready: every master answers and reports cluster_state:ok; a master down is a 503 within a second, and ready again once it is back', async (t) => {
  const cluster = await privateRedisCluster(t)
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const ready = await app.inject({ url: '/ready' })
  t.equal(ready.statusCode, 200)
  t.same(ready.json(), { status: 'ok', store: 'redis' })

  await cluster.kill(1)
  const started = performance.now()
  const down = await app.inject({ url: '/ready' })
  const ms = performance.now() - started
  t.equal(down.statusCode, 503, 'a master down: not ready')
  t.equal(down.json().code, 'STORE_UNAVAILABLE')
  t.ok(ms < 1200, `answered in ${Math.round(ms)} ms`)

  await cluster.restartEmpty(1)
  t.ok(await eventually(async () => (await app.inject({ url: '/ready' })).statusCode === 200), 'ready again once the master is back')
})

for (const loss of ['restarting empty', 'flushed (no reconnect)'] as const) {
  t.test(`a master ${loss} under two instances: a token revoked before stays rejected, older tokens are refused, users come back, fresh logins work on both`, async (t) => {
    const cluster = await privateRedisCluster(t)
    const shared = { ...cluster.env, REDIS_KEY_PREFIX: PREFIX }
    const a = (await buildTestApp(t, 'cluster', shared)).app
    const b = (await buildTestApp(t, 'cluster', shared)).app
    const revoked = await loginTokens(a, USERS.alice)
    const live = await loginTokens(b, USERS.alice)
    t.equal((await a.inject({ method: 'POST', url: '/auth/logout', headers: bearer(revoked.access_token) })).statusCode, 204)
    for (const app of [a, b]) {
      t.equal((await profile(app, bearer(revoked.access_token))).statusCode, 401, 'revoked before the loss')
      t.equal((await profile(app, bearer(live.access_token))).statusCode, 200, 'live before the loss')
    }

    // Only the master holding alice's keys loses its share; the cluster's other masters keep theirs.
    const lost = await cluster.masterOf(aliceAccount)
    if (loss === 'restarting empty') {
      await cluster.restartEmpty(lost)
      t.equal((await cluster.cli(lost, 'dbsize')).trim(), '0', 'that master came back empty')
      // Seeded again when the connection to that master comes back, before anyone logs in.
      t.ok(await eventually(async () => (await cluster.cli(lost, 'exists', aliceAccount)).trim() === '1'), 'alice\'s account is recreated without a login')
    } else {
      await cluster.cli(lost, 'flushall')
      t.equal((await cluster.cli(lost, 'exists', aliceAccount)).trim(), '0', 'that master lost alice\'s keys')
    }

    for (const app of [a, b]) {
      t.ok(await eventually(async () => (await login(app, USERS.alice.username, USERS.alice.password)).statusCode === 200), 'a fresh login works')
    }
    for (const app of [a, b]) {
      t.equal((await profile(app, bearer(revoked.access_token))).statusCode, 401, 'the token revoked before the loss is still refused')
      t.equal((await profile(app, bearer(live.access_token))).statusCode, 401, 'an older token is refused too')
      t.equal((await refresh(app, live.refresh_token)).statusCode, 401, 'and its session is gone')
    }
    const fresh = await loginTokens(b, USERS.alice)
    t.equal((await profile(a, bearer(fresh.access_token))).statusCode, 200, 'a token from after the loss works on the other instance')
  })
}

t.test('a master gone silent (its sockets open): its users get 503 within a second, the other masters\' users are served, and all recover when it answers again', async (t) => {
  const cluster = await privateRedisCluster(t)
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const rootAccount = keysFor(PREFIX, userIdFor(USERS.root.username)).account
  const silent = await cluster.masterOf(aliceAccount)
  t.not(await cluster.masterOf(rootAccount), silent, 'alice and root live on different masters (a fixed property of their ids)')
  const alice = await loginTokens(app, USERS.alice)
  const root = await loginTokens(app, USERS.root)

  // Shorter than the cluster's node timeout (2 s): the other masters keep the cluster up meanwhile.
  cluster.pause(silent)
  t.teardown(() => cluster.resume(silent))
  const started = performance.now()
  const [aliceProfile, aliceLogin, rootAdmin, rootLogin, ready] = await Promise.all([
    profile(app, bearer(alice.access_token)),
    login(app, USERS.alice.username, USERS.alice.password),
    app.inject({ url: '/api/admin', headers: bearer(root.access_token) }),
    login(app, USERS.root.username, USERS.root.password),
    app.inject({ url: '/ready' }),
  ])
  const ms = performance.now() - started
  t.equal(aliceProfile.statusCode, 503, 'a user of the silent master: the hot path answers 503')
  t.equal(aliceLogin.statusCode, 503, 'and a login (ioredis) too')
  t.equal(ready.statusCode, 503, '/ready: a master that does not answer within the bound')
  t.ok(ms < 1000, `within ${Math.round(ms)} ms`)
  t.equal(rootAdmin.statusCode, 200, 'a user of another master is served meanwhile')
  t.equal(rootLogin.statusCode, 200, 'and signs in')
  cluster.resume(silent)

  t.ok(await eventually(async () => (await profile(app, bearer(alice.access_token))).statusCode === 200), 'the silent master\'s users are served again')
  t.ok(await eventually(async () => (await login(app, USERS.alice.username, USERS.alice.password)).statusCode === 200), 'and sign in again')
  t.equal((await app.inject({ url: '/ready' })).statusCode, 200)
})
