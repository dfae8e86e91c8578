import t from 'tap'
import { TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { userIdFor } from '../src/ids.js'
import { keysFor } from '../src/store/keys.js'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { eventually } from './helpers/eventually.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { privateRedisCluster } from './helpers/redis-cluster.js'

// The store on a Redis Cluster of the test's own whose topology changes while the app runs (a master
// added, a slot moved), and one that requires credentials.

const PREFIX = 'cluster:'
const aliceAccount = keysFor(PREFIX, userIdFor(USERS.alice.username)).account

t.test('a master added to the cluster after start-up: a slot moved to it is followed to a connection opened on the spot, and its arrival is reported as a reconnect (users re-seeded)', async (t) => {
  const cluster = await privateRedisCluster(t)
  const lines: string[] = []
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX, LOG_LEVEL: 'info' }, { logStream: { write: (line: string) => { lines.push(line) } } })
  const tokens = await loginTokens(app, USERS.alice)
  const added = await cluster.addMaster()
  await cluster.moveSlotOf(aliceAccount, await cluster.masterOf(aliceAccount), added)
  t.equal(await cluster.masterOf(aliceAccount), added, 'alice\'s slot lives on the new master')

  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'the check followed MOVED to a master it had no connection to')
  // ioredis's client (not the hot path's) learns of the new master from the MOVED answer and opens its
  // connection then; on a loaded machine the first command can find it still opening and fail fast
  // (503: no command is ever queued or resent). A client retries a 503; the retry must rotate there.
  let rotation = await refresh(app, tokens.refresh_token)
  if (rotation.statusCode === 503) {
    t.comment(`first rotation on the new master: 503 (${lines.filter(line => /"level":(40|50)/.test(line)).slice(-2).join(' ')})`)
    rotation = await refresh(app, tokens.refresh_token)
  }
  t.equal(rotation.statusCode, 200, 'and a rotation runs there')
  t.ok(await eventually(async () => lines.some(line => line.includes('Redis connection restored'))), 'the new master is reported as a reconnect: users are re-seeded')
  t.ok(await eventually(async () => (await app.inject({ url: '/ready' })).statusCode === 200), 'ready, with four masters')
})

t.test('a cluster that requires a password: REDIS_CLUSTER_PASSWORD (and REDIS_CLUSTER_USERNAME) sign every connection in; a wrong one is refused at start-up without showing it', async (t) => {
  const password = 'cluster-password-1234'
  const cluster = await privateRedisCluster(t, { password })
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
  const cluster = await privateRedisCluster(t)
  const { app } = await buildTestApp(t, 'cluster', { ...cluster.env, REDIS_KEY_PREFIX: PREFIX })
  const tokens = await loginTokens(app, USERS.alice)
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200)

  const from = await cluster.masterOf(aliceAccount)
  const to = (from + 1) % cluster.ports.length
  await cluster.moveSlotOf(aliceAccount, from, to, { finish: false })
  t.match(await cluster.cli(from, 'exists', aliceAccount), /ASK/, 'mid-migration: the old master answers ASK for alice\'s keys')
  // The keys are on the new master now; one missing there (no denial: the usual case) makes a
  // multi-key check answer TRYAGAIN until the move completes, which here happens 150 ms later.
  const during = profile(app, bearer(tokens.access_token))
  await new Promise(resolve => setTimeout(resolve, 150))
  await cluster.finishMove(aliceAccount, to)
  t.equal((await during).statusCode, 200, 'an access check sent mid-migration followed ASK and TRYAGAIN until the slot settled')
  t.equal(await cluster.masterOf(aliceAccount), to, 'alice\'s keys now live on another master')

  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'the access check, sent to the old master, followed MOVED')
  t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 200, 'and again')
  const rotated = await refresh(app, tokens.refresh_token)
  t.equal(rotated.statusCode, 200, 'a rotation works on the new master')
  const replayed = await refresh(app, tokens.refresh_token)
  t.equal(replayed.json().refresh_token, rotated.json().refresh_token, 'the just-spent token gets the same successor there (the keys moved with the slot)')
  t.equal((await login(app, USERS.alice.username, USERS.alice.password)).statusCode, 200, 'a login works')
})
