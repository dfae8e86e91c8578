import { Agent, request, type ClientRequest } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { TEST_SECRET, USERS, testUsersFile } from './helpers/app.js'
import { PrivateRedis, freePort, withRedis } from './helpers/redis.js'
import { startServer } from './helpers/server.js'

const IN_FLIGHT = 48
const GRACE_MS = 10_000
const LOGIN_BODY = JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password })

interface Answer { status: number, body: string, at: number }

/** One POST /auth/login on its own connection; `body` is the part of the body sent at once. */
function loginOn (agent: Agent, port: number, body = LOGIN_BODY): { sent: ClientRequest, answer: Promise<Answer> } {
  let sent: ClientRequest | undefined
  const answer = new Promise<Answer>((resolve, reject) => {
    sent = request({ host: '127.0.0.1', port, path: '/auth/login', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(LOGIN_BODY) } }, (res) => {
      let text = ''
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, at: performance.now() }))
    })
    sent.on('error', reject)
    sent.write(body)
    if (body === LOGIN_BODY) sent.end()
  })
  return { sent: sent as unknown as ClientRequest, answer }
}

/** Resolves with the time a TCP connect to the port is first refused (the listener closed). */
async function firstRefusal (port: number): Promise<number> {
  const deadline = performance.now() + 5_000
  while (performance.now() < deadline) {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => { socket.destroy(); resolve(false) })
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'))
    })
    if (refused) return performance.now()
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  throw new Error('new connections were still accepted 5 s after SIGTERM')
}

function quitCalls (info: string): number {
  return Number(/cmdstat_quit:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

t.test('SIGTERM with requests in flight: the listener closes at once, every received request is answered, idle keep-alive connections and Redis are closed, exit 0 within the grace delay', async (t) => {
  // A Redis of this test's own: what it saw of the API's connections is the API's alone.
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop())
  const port = await freePort()
  const server = startServer({
    NODE_ENV: 'production',
    PORT: String(port),
    JWT_SECRET: TEST_SECRET,
    REDIS_URL: redis.url,
    USERS_FILE: testUsersFile(),
    RATE_LIMIT_LOGIN_MAX: '1000',
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening()

  // An idle keep-alive connection: the drain must close it rather than wait for it.
  const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  const warmUp = await loginOn(idleAgent, port).answer
  t.equal(warmUp.status, 200, 'warm-up request on a keep-alive connection')
  const idleClosed = new Promise<void>(resolve => {
    for (const sockets of Object.values(idleAgent.freeSockets)) for (const socket of sockets ?? []) socket.once('close', () => resolve())
  })

  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  // A request still arriving when the signal comes: headers and half its body sent.
  const slow = loginOn(agent, port, LOGIN_BODY.slice(0, 10))
  const logins = Array.from({ length: IN_FLIGHT }, () => loginOn(agent, port).answer)
  // Every request received (Fastify logs each as it arrives), argon2 still hashing most of them.
  await server.output(stdout => (stdout.match(/"incoming request"/g) ?? []).length >= IN_FLIGHT + 2)
  const signalledAt = performance.now()
  server.child.kill('SIGTERM')

  const refusedAt = await firstRefusal(port)
  t.equal(server.child.exitCode, null, `new connections refused ${Math.round(refusedAt - signalledAt)} ms after SIGTERM, while the server still runs`)
  slow.sent.end(LOGIN_BODY.slice(10))
  const slowAnswer = await slow.answer
  t.equal(slowAnswer.status, 200, 'the request whose body was still arriving is answered, after new connections were refused')
  t.ok(slowAnswer.at > refusedAt, 'answered after the refusal')

  const settled = await Promise.allSettled(logins)
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

  // The store's client and the rate limiter's each said QUIT rather than vanishing with the process.
  const info = await withRedis(redis.url, client => client.info('commandstats'))
  t.equal(quitCalls(info), 2, 'both Redis connections were closed with QUIT')
})
