import { Agent, request } from 'node:http'
import t from 'tap'
import { TEST_SECRET, USERS, testUsersFile } from './helpers/app.js'
import { deleteKeysUnder, freePort, testRedisUrl, uniqueKeyPrefix } from './helpers/redis.js'
import { startServer } from './helpers/server.js'

const IN_FLIGHT = 48
const GRACE_MS = 10_000

interface Answer { status: number, body: string, at: number }

/** One POST /auth/login on its own connection: each is received by the server before SIGTERM. */
function loginOn (agent: Agent, port: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/auth/login', method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      let body = ''
      res.on('data', (chunk) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, at: performance.now() }))
    })
    req.on('error', reject)
    req.end(JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password }))
  })
}

t.test('SIGTERM with requests in flight: every received request is answered, idle keep-alive connections are closed, exit 0 within the grace delay', async (t) => {
  const redisUrl = await testRedisUrl()
  const prefix = uniqueKeyPrefix()
  t.teardown(() => deleteKeysUnder(redisUrl, prefix))
  const port = await freePort()
  const server = startServer({
    NODE_ENV: 'production',
    PORT: String(port),
    JWT_SECRET: TEST_SECRET,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    USERS_FILE: testUsersFile(),
    RATE_LIMIT_LOGIN_MAX: '1000',
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening()

  // An idle keep-alive connection: the drain must close it rather than wait for it.
  const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  const warmUp = await loginOn(idleAgent, port)
  t.equal(warmUp.status, 200, 'warm-up request on a keep-alive connection')
  const idleClosed = new Promise<void>(resolve => {
    for (const sockets of Object.values(idleAgent.freeSockets)) for (const socket of sockets ?? []) socket.once('close', () => resolve())
  })

  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  const answers = Array.from({ length: IN_FLIGHT }, () => loginOn(agent, port))
  // Every request received (Fastify logs each as it arrives), argon2 still hashing most of them.
  await server.output(stdout => (stdout.match(/"incoming request"/g) ?? []).length >= IN_FLIGHT + 1)
  const signalledAt = performance.now()
  server.child.kill('SIGTERM')

  const settled = await Promise.allSettled(answers)
  const run = await server.exited
  const exitedAfter = performance.now() - signalledAt

  const failed = settled.filter(result => result.status === 'rejected' || result.value.status !== 200)
  t.equal(failed.length, 0, `all ${IN_FLIGHT} in-flight logins answered 200 (failures: ${JSON.stringify(failed.slice(0, 3))})`)
  const late = settled.filter(result => result.status === 'fulfilled' && result.value.at > signalledAt).length
  t.ok(late > 0, `the signal came while requests were in flight (${late} answered after it)`)
  t.equal(run.code, 0, 'exit code 0')
  t.ok(exitedAfter < GRACE_MS, `exited ${Math.round(exitedAfter)} ms after SIGTERM, within the ${GRACE_MS} ms grace delay`)
  await idleClosed
  t.pass('the idle keep-alive connection was closed by the server')
  t.match(run.stdout, /"signal":"SIGTERM".*shutting down/, 'the shutdown is logged')
  t.equal(run.stderr, '', 'nothing on stderr')

  await t.rejects(loginOn(agent, port), { code: 'ECONNREFUSED' }, 'no new connections after the exit')
})
