import { Agent, request, type ClientRequest } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import t from 'tap'
import { TEST_SECRET, USERS, buildTestApp, testUsersFile } from './helpers/app.js'
import { PrivateRedis, freePort, withRedis } from './helpers/redis.js'
import { connectionRefused, parseAnswers } from './helpers/http.js'
import { eventually } from './helpers/eventually.js'
import { startServer } from './helpers/server.js'

const IN_FLIGHT = 48
const GRACE_MS = 10_000
const LOGIN_BODY = JSON.stringify({ username: USERS.alice.username, password: USERS.alice.password })

interface Answer { status: number, body: string, at: number, connection: string | undefined }

let clients = 0
/**
 * One POST /auth/login on its own connection, from a client of its own (X-Forwarded-For through the
 * trusted loopback: one client may have only two password checks in flight); `body` is the part of
 * the body sent at once.
 */
function loginOn (agent: Agent, port: number, body = LOGIN_BODY): { sent: ClientRequest, answer: Promise<Answer> } {
  const client = `198.51.100.${++clients % 250 + 1}`
  let sent: ClientRequest | undefined
  const answer = new Promise<Answer>((resolve, reject) => {
    sent = request({ host: '127.0.0.1', port, path: '/auth/login', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(LOGIN_BODY), 'x-forwarded-for': client } }, (res) => {
      let text = ''
      res.on('data', (chunk) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, at: performance.now(), connection: res.headers.connection }))
    })
    sent.on('error', reject)
    sent.write(body)
    if (body === LOGIN_BODY) sent.end()
  })
  return { sent: sent as unknown as ClientRequest, answer }
}

/** Resolves with the time a TCP connect to the port is first refused (the listener closed). */
async function firstRefusal (port: number): Promise<number> {
  if (await eventually(() => connectionRefused(port), 5000, 2)) return performance.now()
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
    USERS_FILE: await testUsersFile(),
    RATE_LIMIT_LOGIN_MAX: '1000',
    TRUST_PROXY: '127.0.0.1',
    LOG_LEVEL: 'debug', // arrivals are logged ("incoming request") at debug
  })
  t.teardown(() => { server.child.kill('SIGKILL') })
  await server.listening()

  // An idle keep-alive connection: the drain must close it rather than wait for it.
  const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 })
  const warmUp = await loginOn(idleAgent, port).answer
  t.equal(warmUp.status, 200, 'warm-up request on a keep-alive connection')
  const idleClosed = new Promise<number>(resolve => {
    for (const sockets of Object.values(idleAgent.freeSockets)) for (const socket of sockets ?? []) socket.once('close', () => resolve(performance.now()))
  })

  // Keep-alive connections, as a load balancer's pool holds them: each must be closed once answered.
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity })
  // A request still arriving when the signal comes: headers and half its body sent.
  const slow = loginOn(agent, port, LOGIN_BODY.slice(0, 10))
  const logins = Array.from({ length: IN_FLIGHT }, () => loginOn(agent, port).answer)
  // Every request received (each is logged as it arrives), argon2 still hashing most of them.
  await server.output(stdout => (stdout.match(/"incoming request"/g) ?? []).length >= IN_FLIGHT + 2)
  const signalledAt = performance.now()
  server.child.kill('SIGTERM')

  const refusedAt = await firstRefusal(port)
  t.equal(server.child.exitCode, null, `new connections refused ${Math.round(refusedAt - signalledAt)} ms after SIGTERM, while the server still runs`)
  slow.sent.end(LOGIN_BODY.slice(10))
  const slowAnswer = await slow.answer
  t.equal(slowAnswer.status, 200, 'the request whose body was still arriving is answered, after new connections were refused')
  t.equal(slowAnswer.connection, 'close', 'and its keep-alive connection closed')

  const settled = await Promise.allSettled(logins)
  const run = await server.exited
  const exitedAfter = performance.now() - signalledAt

  const failed = settled.filter(result => result.status === 'rejected' || result.value.status !== 200)
  const late = settled.filter(result => result.status === 'fulfilled' && result.value.at > signalledAt).length
  t.equal(failed.length, 0, `all ${IN_FLIGHT} logins received before the signal answered 200, ${late} of them after it (failures: ${JSON.stringify(failed.slice(0, 3))})`)
  // How many of them were still hashing at the signal varies with the machine's load; the slow
  // request above is the one certainly in flight.
  t.equal(run.code, 0, 'exit code 0')
  t.ok(exitedAfter < GRACE_MS, `exited ${Math.round(exitedAfter)} ms after SIGTERM, within the ${GRACE_MS} ms grace delay`)
  const idleClosedAt = await idleClosed
  t.ok(idleClosedAt < slowAnswer.at, 'the idle keep-alive connection was closed by the server during the drain, not by the exit')
  t.match(run.stdout, /"signal":"SIGTERM".*shutting down/, 'the shutdown is logged')
  t.equal(run.stderr, '', 'nothing on stderr')

  // The store's client and the rate limiter's each said QUIT rather than vanishing with the process.
  const info = await withRedis(redis.url, client => client.info('commandstats'))
  t.equal(quitCalls(info), 2, 'both Redis connections were closed with QUIT')
})

t.test('a request arriving on a kept-alive connection during the drain: 503 JSON with Connection: close and the security headers', async (t) => {
  // Holds the drain open between its start (routes closing) and the closing of idle connections:
  // the window in which a kept-alive connection can still bring a request.
  let drainStarted!: () => void
  const draining = new Promise<void>(resolve => { drainStarted = resolve })
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const { app } = await buildTestApp(t, 'memory', {}, { later: scope => scope.addHook('preClose', async () => { drainStarted(); await released }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo

  const socket = connect(port, '127.0.0.1')
  let raw = ''
  socket.on('data', (chunk) => { raw += chunk })
  const socketClosed = new Promise(resolve => socket.once('close', resolve))
  socket.write('GET /health HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  while (!raw.includes('"ok"')) await new Promise(resolve => setTimeout(resolve, 5))
  const closed = app.close()
  await draining
  socket.write('GET /api/profile HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  await socketClosed
  release()
  await closed

  const [before, late, ...more] = parseAnswers(raw)
  t.match(before, { status: 200, headers: { connection: 'keep-alive' } }, 'a kept-alive connection, answered before the drain')
  t.equal(late?.status, 503, 'the request it brings during the drain is refused')
  t.same(JSON.parse(late?.body ?? '{}'), { statusCode: 503, error: 'Service Unavailable', message: 'This instance is shutting down; retry the request', code: 'SHUTTING_DOWN' })
  t.match(late?.headers, {
    connection: 'close',
    'retry-after': '1',
    'cache-control': 'no-store',
    'content-type': /^application\/json/,
    'content-security-policy': "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'",
    'x-content-type-options': 'nosniff',
    'strict-transport-security': /max-age=\d+/,
  }, 'with the headers every answer carries')
  t.equal(more.length, 0, 'and the server closes the connection after it')
})

// A client that never finishes its request must not hold the drain open: the process ends within
// about two seconds, exit 0, whatever such connections remain (a received request is still answered).
for (const [shape, bytes] of [
  ['headers and 1 of 100 body bytes', 'POST /auth/login HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{'],
  ['a request line and headers without the blank line', 'GET /api/profile HTTP/1.1\r\nHost: api.example.com\r\n'],
] as const) {
  t.test(`SIGTERM with a half-sent request open (${shape}): exit 0 within about 2 s`, async (t) => {
    const redis = await PrivateRedis.start()
    t.teardown(() => redis.stop())
    const port = await freePort()
    const server = startServer({ NODE_ENV: 'production', PORT: String(port), JWT_SECRET: TEST_SECRET, REDIS_URL: redis.url, USERS_FILE: await testUsersFile() })
    t.teardown(() => { server.child.kill('SIGKILL') })
    await server.listening()

    const socket = connect(port, '127.0.0.1')
    const socketClosed = new Promise<number>(resolve => socket.once('close', () => resolve(performance.now())))
    socket.on('error', () => {})
    socket.write(bytes)
    // The server has the partial request (a request whose headers arrived is logged as incoming).
    await new Promise(resolve => setTimeout(resolve, 200))
    const signalledAt = performance.now()
    server.child.kill('SIGTERM')
    const run = await server.exited
    const exitedAfter = performance.now() - signalledAt
    t.equal(run.code, 0, 'exit code 0')
    t.ok(exitedAfter < 2500, `exited ${Math.round(exitedAfter)} ms after SIGTERM`)
    t.ok(await socketClosed - signalledAt < 2500, 'the half-sent request\'s connection was closed by the server')
    t.equal(run.stderr, '', 'nothing on stderr')
  })
}

t.test('an answer whose headers left before the drain and whose end after it: its connection closes when it ends', async (t) => {
  let drainStarted!: () => void
  const draining = new Promise<void>(resolve => { drainStarted = resolve })
  const { app } = await buildTestApp(t, 'memory', {}, {
    later: scope => {
      scope.addHook('preClose', async () => { drainStarted() })
      scope.get('/answer-in-two-parts', (_request, reply) => {
        reply.hijack()
        reply.raw.writeHead(200, { 'content-type': 'text/plain' })
        reply.raw.write('first part;')
        // The end leaves after Node closed the connections that were idle when the drain began.
        draining.then(() => setTimeout(() => reply.raw.end('last part'), 300), () => {})
      })
    },
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  let raw = ''
  socket.on('data', (chunk) => { raw += chunk })
  const socketClosed = new Promise<number>(resolve => socket.once('close', () => resolve(performance.now())))
  socket.write('GET /answer-in-two-parts HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  while (!raw.includes('first part')) await new Promise(resolve => setTimeout(resolve, 5))

  const closingAt = performance.now()
  await app.close()
  const closedAfter = performance.now() - closingAt
  const socketClosedAfter = await socketClosed - closingAt
  t.match(raw, /connection: keep-alive/i, 'its headers promised keep-alive (they left before the drain)')
  t.match(raw, /last part/, 'the answer arrived whole')
  t.ok(closedAfter < 1000, `the drain ended ${Math.round(closedAfter)} ms after it began, not at the keep-alive timeout`)
  t.ok(socketClosedAfter < 1000, 'the connection was closed by the server once its answer ended')
})
