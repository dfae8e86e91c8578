import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { Agent, request } from 'node:http'
import { connect } from 'node:net'
import { execFileSync } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TEST_SECRET, USERS, buildTestApp, testUsersFile } from './helpers/app.js'
import { deleteKeysUnder, freePort, testRedisUrl, uniqueKeyPrefix } from './helpers/redis.js'
import { startServer } from './helpers/server.js'

// Logins arrive through a proxy on loopback that names each client in X-Forwarded-For.
const ENV = { TRUST_PROXY: '127.0.0.1' }

interface Timed { status: number, code: string | undefined, retryAfter: string | null, ms: number }

/** Logins over keep-alive connections (node:http: the flood's own client work stays small). */
function loginOver (port: number, maxSockets = 64) {
  const agent = new Agent({ keepAlive: true, maxSockets })
  return function login (ip: string, username: string, password: string): Promise<Timed> {
    const started = performance.now()
    const payload = JSON.stringify({ username, password })
    return new Promise((resolve, reject) => {
      const sent = request({ host: '127.0.0.1', port, agent, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-forwarded-for': ip } }, (response) => {
        let text = ''
        response.on('data', (chunk) => { text += chunk })
        response.on('end', () => {
          const retryAfter = response.headers['retry-after']
          resolve({ status: response.statusCode ?? 0, code: (JSON.parse(text) as { code?: string }).code, retryAfter: retryAfter ?? null, ms: performance.now() - started })
        })
      })
      sent.on('error', reject)
      sent.end(payload)
    })
  }
}

async function waitForListening (port: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const open = await new Promise<boolean>(resolve => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

/**
 * The attacker's client: WORKERS logins at once from IP, each sent again as soon as it is answered —
 * staying inside its limits, as a patient attacker would: a refused one (429) is sent again after its
 * Retry-After. (Ignoring Retry-After turns it into a flood of requests, which costs every endpoint
 * alike and is the API-wide limit's and the load balancer's to stop, not the hashing queue's.)
 */
const FLOODER = `
import { Agent, request } from 'node:http'
const agent = new Agent({ keepAlive: true, maxSockets: 64 })
const counts = {}
let sent = 0
function login (worker) {
  const payload = JSON.stringify({ username: 'nobody-' + worker + '-' + (sent++), password: 'guess' })
  const req = request({ host: '127.0.0.1', port: Number(process.env.PORT), agent, method: 'POST', path: '/auth/login', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-forwarded-for': process.env.IP } }, (res) => {
    let text = ''
    res.on('data', (chunk) => { text += chunk })
    res.on('end', () => {
      const key = res.statusCode + ' ' + JSON.parse(text).code + ' ' + (res.headers['retry-after'] ?? '-')
      counts[key] = (counts[key] ?? 0) + 1
      if (res.statusCode === 429) setTimeout(() => login(worker), Number(res.headers['retry-after'] ?? 1) * 1000)
      else login(worker)
    })
  })
  req.on('error', () => {})
  req.end(payload)
}
for (let worker = 0; worker < Number(process.env.WORKERS); worker++) login(worker)
process.stdout.write('flooding\\n')
process.on('SIGTERM', () => { process.stdout.write(JSON.stringify(counts)); process.exit(0) })
`

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0

t.test('one IP flooding logins (random usernames, 32 at once) does not slow down other users\' logins', async (t) => {
  // The built server in production mode in a process of its own, as deployed: the flood's client
  // work (here, in this process) is not the server's.
  const port = await freePort()
  const keyPrefix = uniqueKeyPrefix()
  const redisUrl = await testRedisUrl()
  const server = startServer({
    NODE_ENV: 'production',
    PORT: String(port),
    JWT_SECRET: TEST_SECRET,
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: keyPrefix,
    USERS_FILE: await testUsersFile(),
    TRUST_PROXY: '127.0.0.1',
    // The flood stays inside every limit: the usernames are all different, and the API-wide limit is
    // raised so that the hashing queue alone bounds it.
    RATE_LIMIT_MAX: '100000',
    LOG_LEVEL: 'warn',
  })
  t.teardown(async () => {
    server.child.kill('SIGKILL')
    await deleteKeysUnder(redisUrl, keyPrefix)
  })
  await waitForListening(port)
  const login = loginOver(port)

  const tries = 15
  const quiet: number[] = []
  // Each try from an address of its own: other users, each well inside the login limit.
  for (let i = 0; i < tries; i++) quiet.push((await login(`198.51.100.${i + 1}`, USERS.alice.username, USERS.alice.password)).ms)

  // The attacker is another machine: its client runs in a process of its own.
  const flooder = spawn(process.execPath, ['--input-type=module', '-e', FLOODER], { env: { PORT: String(port), IP: '203.0.113.66', WORKERS: '32' }, stdio: ['ignore', 'pipe', 'inherit'] })
  let report = ''
  flooder.stdout.on('data', (chunk) => { report += chunk })
  const flooderDone = new Promise(resolve => flooder.once('exit', resolve))
  t.teardown(() => { flooder.kill('SIGKILL') })
  while (!report.includes('flooding')) await new Promise(resolve => setTimeout(resolve, 20))
  await new Promise(resolve => setTimeout(resolve, 1500)) // past the first Retry-After: the flood in its steady state
  const during: Timed[] = []
  for (let i = 0; i < tries; i++) during.push(await login(`198.51.100.${i + 101}`, USERS.alice.username, USERS.alice.password))
  flooder.kill('SIGTERM')
  await flooderDone
  const floodAnswers = JSON.parse(report.slice(report.indexOf('\n') + 1)) as Record<string, number>

  t.same([...new Set(during.map(answer => answer.status))], [200], 'the other user logs in every time')
  const quietMedian = median(quiet)
  const floodMedian = median(during.map(answer => answer.ms))
  const bound = Math.max(5 * quietMedian, quietMedian + 150)
  t.ok(floodMedian <= bound, `median login ${floodMedian.toFixed(0)} ms during the flood, ${quietMedian.toFixed(0)} ms quiet (bound ${bound.toFixed(0)} ms)`)

  // The flood's answers, counted by status, code and Retry-After.
  t.same(Object.keys(floodAnswers).sort(), ['401 INVALID_CREDENTIALS -', '429 LOGIN_BUSY 1'], `the flood's logins were checked (401) or refused as LOGIN_BUSY with Retry-After: 1, nothing else: ${JSON.stringify(floodAnswers)}`)
  t.ok((floodAnswers['429 LOGIN_BUSY 1'] ?? 0) >= 30, `refused ${floodAnswers['429 LOGIN_BUSY 1']} times: the flood kept 32 logins going, two at a time were checked`)
})

t.test('known and unknown usernames wait in the same queue: the busy answer tells nothing about existence', async (t) => {
  const { app } = await buildTestApp(t, 'memory', ENV)
  const login = (username: string, password: string, ip = '192.0.2.40') => app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': ip }, payload: { username, password } })
  // The dummy hash unknown usernames are checked against is made on first use, on libuv's threads.
  t.equal((await login('nobody', 'w', '192.0.2.49')).statusCode, 401)
  for (const [first, third] of [['nobody', USERS.alice.username], [USERS.alice.username, 'nobody']] as const) {
    // Both checks stay in the queue until the third login is answered, however fast argon2 is here.
    const pool = await holdThreadPool(t)
    const held = [login(first, 'x'), login(first, 'y')]
    await bothChecking(app)
    const answer = await login(third, 'z')
    const releasing = pool.release()
    t.equal(answer.statusCode, 429, `${third} while two logins of ${first} are hashing: 429`)
    t.same(answer.json(), { statusCode: 429, error: 'Too Many Requests', message: 'Too many logins from this client are being checked at once; retry in a second', code: 'LOGIN_BUSY' })
    t.same((await Promise.all(held)).map(r => r.statusCode), [401, 401])
    await releasing
  }
})

/**
 * Occupies every thread of libuv's pool (argon2 hashes there) with an open of a FIFO nobody writes
 * to, until `release`: hashes started meanwhile stay running in the hashing queue's eyes.
 */
async function holdThreadPool (t: Test): Promise<{ release: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pool-'))
  const fifo = join(dir, 'hold')
  execFileSync('mkfifo', [fifo])
  const size = Number(process.env.UV_THREADPOOL_SIZE ?? 4)
  const readers = Array.from({ length: size }, () => open(fifo, 'r'))
  let released: Promise<void> | undefined
  const release = (): Promise<void> => {
    released ??= (async () => {
      // A writer frees every reader blocked in open(), and is still there for a reader whose open
      // starts only now (it was queued behind other work); read-write, so opening it never blocks.
      const writer = openSync(fifo, 'r+')
      try {
        await Promise.all((await Promise.all(readers)).map(handle => handle.close()))
      } finally {
        closeSync(writer)
        await rm(dir, { recursive: true, force: true })
      }
    })()
    return released
  }
  t.teardown(release)
  return { release }
}

/** Resolves once two password checks of one client are in the queue. */
async function bothChecking (app: Awaited<ReturnType<typeof buildTestApp>>['app']): Promise<void> {
  const deadline = Date.now() + 5000
  while (Date.now() < deadline) {
    const load = app.users.hashingLoad
    if (load.running + load.waiting === 2) return
    await new Promise(resolve => setTimeout(resolve, 1))
  }
  throw new Error('the two logins never reached the hashing queue')
}

t.test('a login refused as LOGIN_BUSY counts in the login limit', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { ...ENV, RATE_LIMIT_LOGIN_MAX: '1' })
  const login = (username: string) => app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': '192.0.2.41' }, payload: { username, password: 'x' } })
  const held = [login('first'), login('second')]
  await bothChecking(app)
  t.equal((await login('third')).json().code, 'LOGIN_BUSY', 'a third at once is refused')
  await Promise.all(held)
  const again = await login('third')
  t.equal(again.statusCode, 429)
  t.equal(again.json().code, 'RATE_LIMITED', 'the same username from the same client again: its refused attempt was counted')
})

t.test('many clients at once: beyond what the queue holds or within its wait, 503 LOGIN_BUSY, and every attempt counts in the login limit', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { ...ENV, RATE_LIMIT_LOGIN_MAX: '1' })
  const { port } = (await app.listen({ port: 0, host: '127.0.0.1' }), app.server.address() as AddressInfo)
  const login = loginOver(port, Infinity)
  // 2 per client from 100 clients: far more than cores × 32 places, and more than a second of hashing.
  const clients = Array.from({ length: 100 }, (_, i) => `198.18.${Math.floor(i / 200)}.${i % 200 + 1}`)
  const answers = await Promise.all(clients.flatMap(ip => [login(ip, `user-${ip}-a`, 'x'), login(ip, `user-${ip}-b`, 'x')]))
  const busy = answers.filter(answer => answer.status === 503)
  t.ok(busy.length > 0, `${busy.length} of ${answers.length} answered 503`)
  t.same([...new Set(busy.map(answer => `${answer.code} ${answer.retryAfter}`))], ['LOGIN_BUSY 1'], 'LOGIN_BUSY, Retry-After: 1')
  t.same([...new Set(answers.map(answer => answer.status))].sort(), [401, 503], 'the others were checked')

  const sent = clients.flatMap(ip => [[ip, `user-${ip}-a`], [ip, `user-${ip}-b`]] as const)
  const [ip, username] = sent[answers.findIndex(answer => answer.status === 503)] ?? ['', '']
  const retried = await login(ip, username, 'x')
  t.equal(retried.status, 429, 'a username refused with 503 from its client, again: its busy attempt was counted')
  t.equal(retried.code, 'RATE_LIMITED')
})
