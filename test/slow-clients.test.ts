import { connect, type AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { parseAnswers } from './helpers/http.js'

// Short timeouts, so that the test takes seconds; the defaults are 10 s and 15 s.
const ENV = { HTTP_HEADERS_TIMEOUT: '1', HTTP_REQUEST_TIMEOUT: '2', HTTP_KEEP_ALIVE_TIMEOUT: '1' }
const HEADERS = 'POST /auth/login HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: 100\r\n'

interface Held { raw: string, closedAfter: number }

/**
 * A client that writes `first`, then `more` every `everyMs` until the server closes the connection
 * (or `giveUpMs` passes: a hang). Resolves with what came back and when the server closed.
 */
function slowClient (port: number, first: string, more = '', everyMs = 0, giveUpMs = 8000): Promise<Held> {
  return new Promise((resolve, reject) => {
    const started = performance.now()
    const socket = connect(port, '127.0.0.1')
    let raw = ''
    let ticker: NodeJS.Timeout | undefined
    socket.setTimeout(giveUpMs, () => socket.destroy(new Error(`still open after ${giveUpMs} ms`)))
    socket.on('data', (chunk) => { raw += chunk.toString('latin1') })
    socket.on('error', (err: NodeJS.ErrnoException) => { if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err) })
    socket.on('close', () => {
      clearInterval(ticker)
      resolve({ raw, closedAfter: performance.now() - started })
    })
    socket.write(first)
    if (more !== '') ticker = setInterval(() => { if (socket.writable) socket.write(more) }, everyMs)
  })
}

async function listening (t: Test, env: NodeJS.ProcessEnv = ENV): Promise<number> {
  return (await listeningApp(t, env)).port
}

async function listeningApp (t: Test, env: NodeJS.ProcessEnv = ENV): Promise<{ app: FastifyInstance, port: number }> {
  const { app } = await buildTestApp(t, 'memory', env)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, port: (app.server.address() as AddressInfo).port }
}

function assertTimedOut (t: Test, held: Held, within: number, what: string) {
  const [answer, ...more] = parseAnswers(held.raw)
  t.equal(answer?.status, 408, `${what}: 408`)
  t.same(JSON.parse(answer?.body ?? '{}'), { statusCode: 408, error: 'Request Timeout', message: 'The request took too long to arrive', code: 'ERR_HTTP_REQUEST_TIMEOUT' }, `${what}: our JSON error`)
  t.equal(answer?.headers['x-content-type-options'], 'nosniff', `${what}: with the security headers`)
  t.equal(more.length, 0)
  t.ok(held.closedAfter < within, `${what}: closed after ${Math.round(held.closedAfter)} ms (< ${within})`)
}

t.test('a body that stops arriving: 408 once the request timeout is up', async (t) => {
  const port = await listening(t)
  assertTimedOut(t, await slowClient(port, `${HEADERS}\r\n{"username"`), 3500, 'headers and 11 of 100 body bytes')
})

t.test('a body trickling in a byte at a time: 408 at the request timeout, however steadily it comes', async (t) => {
  const port = await listening(t)
  assertTimedOut(t, await slowClient(port, `${HEADERS}\r\n{`, ' ', 300), 3500, 'a byte every 300 ms')
})

t.test('headers that never end (one more every 400 ms): 408 once the headers timeout is up', async (t) => {
  const port = await listening(t)
  const held = await slowClient(port, 'GET /api/profile HTTP/1.1\r\nHost: api.example.com\r\n', 'X-Slow: 1\r\n', 400)
  assertTimedOut(t, held, 2600, 'a header every 400 ms')
})

t.test('many connections holding half-sent requests are all closed', async (t) => {
  const port = await listening(t)
  const held = await Promise.all(Array.from({ length: 60 }, () => slowClient(port, `${HEADERS}\r\n{"user`)))
  t.same([...new Set(held.map(h => parseAnswers(h.raw)[0]?.status))], [408], 'every one of 60 answered 408')
  const last = Math.max(...held.map(h => h.closedAfter))
  t.ok(last < 4000, `and closed, the last after ${Math.round(last)} ms`)
})

t.test('a connection that sends nothing, and an idle kept-alive one, are closed', async (t) => {
  const port = await listening(t)
  const silent = await slowClient(port, '')
  t.ok(silent.closedAfter < 3500, `silent: closed after ${Math.round(silent.closedAfter)} ms`)
  const keptAlive = await slowClient(port, 'GET /health HTTP/1.1\r\nHost: api.example.com\r\n\r\n')
  t.equal(parseAnswers(keptAlive.raw)[0]?.status, 200, 'answered')
  t.ok(keptAlive.closedAfter >= 900 && keptAlive.closedAfter < 3000, `then closed after the keep-alive timeout (${Math.round(keptAlive.closedAfter)} ms)`)
})

t.test('HTTP_MAX_REQUESTS_PER_SOCKET and HTTP_MAX_CONNECTIONS bound what one connection and the instance hold', async (t) => {
  const { app, port } = await listeningApp(t, { ...ENV, HTTP_MAX_REQUESTS_PER_SOCKET: '2', HTTP_MAX_CONNECTIONS: '3' })
  const request = 'GET /health HTTP/1.1\r\nHost: api.example.com\r\n\r\n'
  const reused = await slowClient(port, request.repeat(3))
  const answers = parseAnswers(reused.raw)
  t.same(answers.map(a => [a.status, a.headers.connection]), [[200, 'keep-alive'], [200, 'close']], 'the second answer closes the connection; the third request is not served on it')

  // A request pipelined behind the last allowed one is never answered (the connection closes), so
  // it must not be carried out either: a refresh there would spend a token whose successor is lost.
  const { refresh_token: refreshToken } = (await app.inject({ method: 'POST', url: '/auth/login', payload: { username: USERS.alice.username, password: USERS.alice.password } })).json()
  const body = JSON.stringify({ refresh_token: refreshToken })
  const pipelined = await slowClient(port, request + request + `POST /auth/refresh HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`)
  t.equal(parseAnswers(pipelined.raw).length, 2, 'two answers on the pipelined connection')
  t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshToken } })).statusCode, 200, 'the refresh pipelined beyond the bound spent nothing')

  const open = await Promise.all(Array.from({ length: 3 }, () => new Promise<ReturnType<typeof connect>>(resolve => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket))
  })))
  t.teardown(() => { for (const socket of open) socket.destroy() })
  await new Promise(resolve => setTimeout(resolve, 50))
  const fourth = await slowClient(port, request)
  t.equal(fourth.raw, '', 'a fourth connection is dropped unanswered')
  t.ok(fourth.closedAfter < 500, 'at once')
})
