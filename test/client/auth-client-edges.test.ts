import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { AuthError, SignedOutError, createAuthClient } from '../../client/src/index.js'
import { refreshMargin } from '../../client/src/session.js'
import { userIdFor } from '../../src/ids.js'
import { USERS, buildTestApp } from '../helpers/app.js'
import { memoryStorage } from './storage.js'

// The client kit's edges: what a flaky network, a stale refresh and odd paths do to it.

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

/**
 * The API behind a proxy whose answers to /auth/refresh a test decides: `onRefresh` returns true when
 * it has answered (or swallowed) the request itself, false to let it through.
 */
async function proxiedApi (t: Test, env: NodeJS.ProcessEnv, onRefresh: (n: number, res: ServerResponse, forward: () => void) => boolean) {
  const { app } = await buildTestApp(t, 'memory', env)
  const api = new URL(await app.listen({ port: 0, host: '127.0.0.1' }))
  let refreshes = 0
  const proxy = createServer((req: IncomingMessage, res: ServerResponse) => {
    const forward = () => {
      const upstream = httpRequest({ host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      })
      req.pipe(upstream)
    }
    if (req.url === '/auth/refresh' && onRefresh(++refreshes, res, forward)) return
    forward()
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { proxy.closeAllConnections(); proxy.close() })
  return { app, baseUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`, refreshes: () => refreshes }
}

t.test('a refresh that stalls is given up after refreshTimeoutMs and tried again', async (t) => {
  const { baseUrl, refreshes } = await proxiedApi(t, { ACCESS_TOKEN_TTL: '1' }, (n) => n === 1) // the first is swallowed
  const auth = createAuthClient({ baseUrl, transport: 'body', proactiveRefresh: false, refreshTimeoutMs: 300, retryDelayMs: 20 })
  await auth.login(USERS.alice)
  await sleep(1100)
  t.equal((await auth.fetch('/api/profile')).status, 200, 'the call succeeded')
  t.equal(refreshes(), 2, 'on the second attempt')
})

t.test('429/5xx answers are retried; when the retries run out the call fails with AuthError, still signed in', async (t) => {
  let failing = true
  const { baseUrl, refreshes } = await proxiedApi(t, { ACCESS_TOKEN_TTL: '1' }, (_n, res) => {
    if (!failing) return false
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '0' }).end(JSON.stringify({ statusCode: 503, error: 'Service Unavailable', message: 'The token store is unavailable; try again shortly', code: 'STORE_UNAVAILABLE' }))
    return true
  })
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, proactiveRefresh: false, refreshRetries: 2, retryDelayMs: 10 })
  let signedOut = 0
  auth.onSignedOut(() => { signedOut++ })
  await auth.login(USERS.alice)
  await sleep(1100)
  await t.rejects(auth.fetch('/api/profile'), { constructor: AuthError, status: 503, code: 'STORE_UNAVAILABLE' })
  t.equal(refreshes(), 3, 'one attempt and two retries')
  t.equal(signedOut, 0, 'an unavailable store is not a sign-out')
  t.not(storage.value, null, 'the tokens are kept')
  failing = false
  t.equal((await auth.fetch('/api/profile')).status, 200, 'and the next call, the store back, refreshes and succeeds')
})

t.test('a network that fails every refresh attempt: the call fails with that error after the retries, still signed in', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { ACCESS_TOKEN_TTL: '1' })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  let offline = true
  let attempts = 0
  const flakyFetch: typeof fetch = async (input, init) => {
    if (offline && new Request(input, init).url.endsWith('/auth/refresh')) {
      attempts++
      throw new TypeError('fetch failed')
    }
    return fetch(input, init)
  }
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, fetch: flakyFetch, proactiveRefresh: false, refreshRetries: 2, retryDelayMs: 10 })
  let signedOut = 0
  auth.onSignedOut(() => { signedOut++ })
  await auth.login(USERS.alice)
  await sleep(1100)
  await t.rejects(auth.fetch('/api/profile'), { constructor: TypeError, message: 'fetch failed' }, 'the network\'s own error')
  t.equal(attempts, 3, 'one attempt and two retries')
  t.equal(signedOut, 0, 'a network failure is not a sign-out')
  t.not(storage.value, null, 'the tokens are kept')
  offline = false
  t.equal((await auth.fetch('/api/profile')).status, 200, 'back online, the next call refreshes and succeeds')
})

t.test('a session ended while its access token expired: the refresh gets 401, every waiting call rejects, onSignedOut fires once', async (t) => {
  const { app, baseUrl, refreshes } = await proxiedApi(t, { ACCESS_TOKEN_TTL: '1' }, () => false)
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, proactiveRefresh: false })
  let fired = 0
  auth.onSignedOut(() => { fired++ })
  await auth.login(USERS.alice)
  // Ended elsewhere by its refresh token (another device, an admin): the access token then expires.
  await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: storage.value?.refreshToken } })
  await sleep(1100)
  const calls = await Promise.allSettled(Array.from({ length: 5 }, () => auth.fetch('/api/profile')))
  t.same(calls.map(c => c.status === 'rejected' && c.reason instanceof SignedOutError), [true, true, true, true, true], 'all five reject with SignedOutError')
  t.equal(refreshes(), 1, 'after one refresh, answered 401')
  t.equal(fired, 1, 'onSignedOut fired once')
  t.equal(storage.value, null, 'the stored tokens are gone')
})

t.test('a refresh still under way when the user logs out and another logs in belongs to nobody', async (t) => {
  let release!: () => void
  const held = new Promise<void>(resolve => { release = resolve })
  const { baseUrl } = await proxiedApi(t, { ACCESS_TOKEN_TTL: '1' }, (n, _res, forward) => {
    if (n !== 1) return false
    held.then(forward, () => {}) // alice's refresh reaches the API only after bob has logged in
    return true
  })
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, proactiveRefresh: false })
  let signedOut = 0
  auth.onSignedOut(() => { signedOut++ })
  await auth.login(USERS.alice)
  await sleep(1100)
  const alicesCall = auth.fetch('/api/profile') // needs a refresh, which hangs
  await sleep(100)
  await auth.logout()
  await auth.login(USERS.root)
  release()
  await t.rejects(alicesCall, SignedOutError, 'alice\'s call ends with her session')
  await sleep(200)
  t.equal(storage.value?.refreshToken?.split('.')[0], userIdFor(USERS.root.username), 'the stored tokens are root\'s, not alice\'s late refresh')
  t.equal((await (await auth.fetch('/api/profile')).json() as { username: string }).username, USERS.root.username, 'the client works as root')
  t.equal(signedOut, 1, 'signed out once, by the logout')
})

t.test('typed calls with a body, and calls that would leave the API\'s origin', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const sent: string[] = []
  const countingFetch: typeof fetch = async (input, init) => {
    sent.push(input instanceof Request ? input.url : String(input))
    return fetch(input, init)
  }
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, fetch: countingFetch })
  await auth.login(USERS.alice)
  const refreshToken = storage.value?.refreshToken ?? ''
  const { response } = await auth.api.POST('/auth/logout', { body: { refresh_token: refreshToken } })
  t.equal(response.status, 204, 'a POST with a body through the typed client')
  const after = await fetch(`${baseUrl}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
  t.equal(after.status, 401, 'it did log out')

  await auth.login(USERS.alice)
  const before = sent.length
  for (const path of ['.evil.example/x', '//evil.example/x', 'https://evil.example/x', '@evil.example/x']) {
    await t.rejects(auth.fetch(path), TypeError, `${path}: refused`)
  }
  t.equal(sent.length, before, 'nothing was sent, no token left')
  const { data } = await auth.api.GET('/health')
  t.same(data, { status: 'ok' }, 'an unauthenticated route through the typed client')
})

t.test('outside a browser page, clients never share a session, even where navigator.locks exists (Node 24.5+)', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const locks = { request: async <T>(_name: string, task: () => Promise<T>) => task() }
  Object.defineProperty(globalThis, 'navigator', { value: { locks }, configurable: true, writable: true })
  t.teardown(() => { Reflect.deleteProperty(globalThis, 'navigator') })
  const alice = createAuthClient({ baseUrl, transport: 'body' })
  const bob = createAuthClient({ baseUrl, transport: 'body' })
  await alice.login(USERS.alice)
  await sleep(50)
  await t.rejects(bob.fetch('/api/profile'), SignedOutError, 'the other client did not receive alice\'s tokens')
  t.equal((await alice.fetch('/api/profile')).status, 200)
})

t.test('calls made while a background refresh is under way wait for that one: the server sees one refresh', async (t) => {
  // Each refresh takes 500 ms on the way; the proactive one starts 0.8 s after the login (1 s of lifetime, 20 % early).
  const { baseUrl, refreshes } = await proxiedApi(t, { ACCESS_TOKEN_TTL: '2' }, (_n, _res, forward) => {
    setTimeout(forward, 500)
    return true
  })
  const auth = createAuthClient({ baseUrl, transport: 'body' })
  await auth.login(USERS.alice)
  await sleep(950) // the background refresh is in flight
  t.equal(refreshes(), 1, 'the background refresh has started')
  const answers = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/api/profile')))
  t.same([...new Set(answers.map(a => a.status))], [200])
  t.equal(refreshes(), 1, 'the 20 calls joined it: no second refresh')
  await auth.logout()
})

t.test('the refresh margin: 20 % of the lifetime, at most 30 s', async (t) => {
  t.equal(refreshMargin(10_000), 2000)
  t.equal(refreshMargin(900_000), 30_000)
  t.equal(refreshMargin(0), 0)
})
