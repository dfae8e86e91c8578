import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import t, { type Test } from 'tap'
import { TEST_SECRET, USERS, testUsersFile } from './helpers/app.js'
import { freePort, uniqueKeyPrefix } from './helpers/redis.js'
import { startServer } from './helpers/server.js'
import { certificates } from './helpers/tls-certificates.js'
import { PrivateRedisCluster } from './helpers/redis-cluster.js'

// rediss://: both of the store's connections (ioredis, and the hot path's batched one) speak TLS and
// verify Redis's certificate against Node's CAs, which an operator extends with NODE_EXTRA_CA_CERTS.

const PASSWORD = 'tls-test-password'

/** A redis-server of the test's own that speaks TLS only, with a password. */
async function tlsRedis (t: Test, files: ReturnType<typeof certificates>): Promise<number> {
  const port = await freePort()
  const child = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--tls-cert-file', files.cert, '--tls-key-file', files.key, '--tls-ca-cert-file', files.ca, '--tls-auth-clients', 'no',
    '--requirepass', PASSWORD,
  ], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  const ca = readFileSync(files.ca)
  for (let attempt = 0; attempt < 100; attempt++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => { socket.destroy(); resolve(true) })
      socket.on('error', () => resolve(false))
    })
    if (up) return port
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error('the TLS redis-server did not start')
}

t.test('rediss://: the server runs on a TLS-only Redis whose certificate it verifies', async (t) => {
  const files = certificates(t)
  const redisPort = await tlsRedis(t, files)
  const env = {
    NODE_ENV: 'production',
    JWT_SECRET: TEST_SECRET,
    USERS_FILE: await testUsersFile(),
    REDIS_URL: `rediss://:${PASSWORD}@localhost:${redisPort}`,
    REDIS_KEY_PREFIX: uniqueKeyPrefix(),
  }

  t.test('with the CA trusted (NODE_EXTRA_CA_CERTS): logins, the hot path and readiness work', async (t) => {
    const port = await freePort()
    const server = startServer({ ...env, PORT: String(port), NODE_EXTRA_CA_CERTS: files.ca })
    t.teardown(() => { server.child.kill('SIGKILL') })
    await server.listening()
    const base = `http://127.0.0.1:${port}`
    t.equal((await fetch(`${base}/ready`)).status, 200, 'both connections answer PING')
    const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USERS.root) })
    t.equal(login.status, 200, 'a login (account read and session write on ioredis)')
    const { access_token: token } = await login.json() as { access_token: string }
    const admin = await fetch(`${base}/api/admin`, { headers: { authorization: `Bearer ${token}` } })
    t.equal(admin.status, 200, 'an admin call (limit count and access check on the batched connection)')
    server.child.kill('SIGTERM')
    t.equal((await server.exited).code, 0)
  })

  t.test('Redis named by its address: the certificate is checked against its IP, with no SNI warning', async (t) => {
    const port = await freePort()
    const server = startServer({ ...env, REDIS_URL: `rediss://:${PASSWORD}@127.0.0.1:${redisPort}`, PORT: String(port), NODE_EXTRA_CA_CERTS: files.ca })
    t.teardown(() => { server.child.kill('SIGKILL') })
    await server.listening()
    t.equal((await fetch(`http://127.0.0.1:${port}/ready`)).status, 200)
    server.child.kill('SIGTERM')
    const run = await server.exited
    t.equal(run.code, 0)
    t.notMatch(run.stderr, /Warning/, 'nothing on stderr about TLS')
  })

  t.test('without it: start-up refuses the certificate, naming REDIS_URL and never the password', async (t) => {
    const run = await startServer({ ...env, PORT: String(await freePort()) }).exited
    t.equal(run.code, 1)
    t.match(run.stderr, /REDIS_URL: Redis at rediss:\/\/localhost:\d+\/? does not answer \(.*(self[- ]signed|unable to verify|certificate).*\)/i)
    t.notMatch(run.stderr + run.stdout, PASSWORD)
  })
})

t.test('REDIS_CLUSTER_TLS: the server runs on a TLS-only cluster with a password, verifying every master\'s certificate', async (t) => {
  const files = certificates(t)
  const cluster = await PrivateRedisCluster.start(3, { password: PASSWORD, tls: files })
  t.teardown(() => cluster.stop())
  const env = {
    NODE_ENV: 'production',
    JWT_SECRET: TEST_SECRET,
    USERS_FILE: await testUsersFile(),
    ...cluster.env,
    REDIS_KEY_PREFIX: uniqueKeyPrefix(),
  }

  const port = await freePort()
  const server = startServer({ ...env, PORT: String(port), NODE_EXTRA_CA_CERTS: files.ca })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening()
  const base = `http://127.0.0.1:${port}`
  t.equal((await fetch(`${base}/ready`)).status, 200, 'every master answers CLUSTER INFO over TLS')
  const login = await fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(USERS.root) })
  t.equal(login.status, 200, 'a login (ioredis\'s Cluster client over TLS)')
  const { access_token: token } = await login.json() as { access_token: string }
  t.equal((await fetch(`${base}/api/admin`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'an admin call (the batched connections over TLS)')
  server.child.kill('SIGTERM')
  const run = await server.exited
  t.equal(run.code, 0)
  t.notMatch(run.stderr, /Warning/, 'nothing on stderr about TLS')

  const untrusted = await startServer({ ...env, PORT: String(await freePort()) }).exited
  t.equal(untrusted.code, 1, 'without the CA: start-up refused')
  t.match(untrusted.stderr, /REDIS_CLUSTER_NODES: the Redis Cluster at [\d.:,]+ does not answer/)
  t.notMatch(untrusted.stderr + untrusted.stdout, PASSWORD)
})
