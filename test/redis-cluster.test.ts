import t, { type Test } from 'tap'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { userIdFor } from '../src/ids.js'
import { keysFor } from '../src/store/keys.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { eventually } from './helpers/eventually.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { PrivateRedisCluster } from './helpers/redis-cluster.js'

// The store on a Redis Cluster of the test's own (three masters, no replicas): readiness, a master
// that restarts empty, credentials, and a slot that moves while the app runs.

const PREFIX = 'cluster:'
const aliceAccount = keysFor(PREFIX, userIdFor(USERS.alice.username)).account

async function privateCluster (t: Test, options: { password?: string } = {}): Promise<PrivateRedisCluster> {
  const cluster = await PrivateRedisCluster.start(3, options)
  t.teardown(() => cluster.stop())
  return cluster
}

/** The index of the master holding `key` (the others answer MOVED). */
async function masterOf (cluster: PrivateRedisCluster, key: string): Promise<number> {
  for (let i = 0; i < cluster.ports.length; i++) {
    if (!(await cluster.cli(i, 'exists', key)).includes('MOVED')) return i
  }
  throw new Error(`no master holds ${key}`)
}

t.test('/ready: every master answers and reports cluster_state:ok; a master down is a 503 within a second, and ready again once it is back', async (t) => {
  const cluster = await privateCluster(t)
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
    const cluster = await privateCluster(t)
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
    const lost = await masterOf(cluster, aliceAccount)
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
  const cluster = await privateCluster(t)
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const rootAccount = keysFor(PREFIX, userIdFor(USERS.root.username)).account
  const silent = await masterOf(cluster, aliceAccount)
  t.not(await masterOf(cluster, rootAccount), silent, 'alice and root live on different masters (a fixed property of their ids)')
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

t.test('a master added to the cluster after start-up: a slot moved to it is followed to a connection opened on the spot, and its arrival is reported as a reconnect (users re-seeded)', async (t) => {
  const cluster = await privateCluster(t)
  const lines: string[] = []
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX, LOG_LEVEL: 'info' }, { logStream: { write: (line: string) => { lines.push(line) } } })
  const tokens = await loginTokens(app, USERS.alice)
  const added = await cluster.addMaster()
  await cluster.moveSlotOf(aliceAccount, await masterOf(cluster, aliceAccount), added)
  t.equal(await masterOf(cluster, aliceAccount), added, 'alice\'s slot lives on the new master')

  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'the check followed MOVED to a master it had no connection to')
  t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'and a rotation runs there')
  t.ok(await eventually(async () => lines.some(line => line.includes('Redis connection restored'))), 'the new master is reported as a reconnect: users are re-seeded')
  t.equal((await app.inject({ url: '/ready' })).statusCode, 200, 'ready, with four masters')
})

t.test('a cluster that requires a password: REDIS_CLUSTER_PASSWORD (and REDIS_CLUSTER_USERNAME) sign every connection in; a wrong one is refused at start-up without showing it', async (t) => {
  const password = 'cluster-password-1234'
  const cluster = await privateCluster(t, { password })
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const tokens = await loginTokens(app, USERS.alice)
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'the hot path signs in on every master')
  t.equal((await app.inject({ url: '/ready' })).statusCode, 200)
  t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'and ioredis does too')

  // An ACL user of its own (REDIS_CLUSTER_USERNAME), on every master.
  for (let i = 0; i < cluster.ports.length; i++) await cluster.cli(i, 'acl', 'setuser', 'api', 'on', '>api-password-9012', '~*', '&*', '+@all')
  const { app: asUser } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_CLUSTER_USERNAME: 'api', REDIS_CLUSTER_PASSWORD: 'api-password-9012', REDIS_KEY_PREFIX: PREFIX })
  const userTokens = await loginTokens(asUser, USERS.root)
  t.equal((await asUser.inject({ url: '/api/admin', headers: bearer(userTokens.access_token) })).statusCode, 200, 'an ACL user and its password')
  t.equal((await refresh(asUser, userTokens.refresh_token)).statusCode, 200)

  const wrong = 'not-the-password-5678'
  const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: TEST_SECRET, REDIS_CLUSTER_NODES: cluster.nodes, REDIS_CLUSTER_PASSWORD: wrong, LOG_LEVEL: 'silent' })
  const started = performance.now()
  const refused = await buildApp(config).then(app => app.ready()).then(() => undefined, (err: Error) => err)
  t.ok(refused instanceof Error, 'start-up refused')
  t.ok(refused?.message.startsWith('REDIS_CLUSTER_NODES: '), `names the variable: ${refused?.message}`)
  t.notOk(refused?.message.includes(wrong), 'never the password')
  t.ok(performance.now() - started < 4000, 'within the start-up bound')
})

t.test('a slot that moves to another master while the app runs: the hot path follows ASK, then MOVED; rotation and login go on', async (t) => {
  const cluster = await privateCluster(t)
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const tokens = await loginTokens(app, USERS.alice)
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200)

  const from = await masterOf(cluster, aliceAccount)
  const to = (from + 1) % cluster.ports.length
  await cluster.moveSlotOf(aliceAccount, from, to, { finish: false })
  t.match(await cluster.cli(from, 'exists', aliceAccount), /ASK/, 'mid-migration: the old master answers ASK for alice\'s keys')
  // The keys are on the new master now; one missing there (no denial: the usual case) makes a
  // multi-key check answer TRYAGAIN until the move completes, which here happens 150 ms later.
  const during = profile(app, bearer(tokens.access_token))
  await new Promise(resolve => setTimeout(resolve, 150))
  await cluster.finishMove(aliceAccount, to)
  t.equal((await during).statusCode, 200, 'an access check sent mid-migration followed ASK and TRYAGAIN until the slot settled')
  t.equal(await masterOf(cluster, aliceAccount), to, 'alice\'s keys now live on another master')

  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'the access check, sent to the old master, followed MOVED')
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'and again')
  const rotated = await refresh(app, tokens.refresh_token)
  t.equal(rotated.statusCode, 200, 'a rotation works on the new master')
  const replayed = await refresh(app, tokens.refresh_token)
  t.equal(replayed.json().refresh_token, rotated.json().refresh_token, 'the just-spent token gets the same successor there (the keys moved with the slot)')
  t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 200, 'a login works')
})
