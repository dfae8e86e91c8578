import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { AuthError, SignedOutError, createAuthClient, type StoredTokens } from '../../client/src/index.js'
import { USERS, buildTestApp } from '../helpers/app.js'
import { bearer } from '../helpers/http.js'
import { logCapture } from '../helpers/log.js'
import { memoryStorage } from './storage.js'

// The client kit in body mode (mobile, REST), against the real API listening on a port.

async function listeningApi (t: Test, env: NodeJS.ProcessEnv = {}) {
  const { stream, requestUrls } = logCapture()
  const { app } = await buildTestApp(t, 'redis', { LOG_LEVEL: 'info', ...env }, { logStream: stream })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  /** How many refreshes the server saw (every one writes an audit line: rotated, replayed or refused). */
  const refreshesSeen = () => requestUrls().filter(url => url === '/auth/refresh').length
  return { app, baseUrl, refreshesSeen }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

t.test('50 concurrent calls with an access token that expired: the server sees exactly one refresh, every call succeeds', async (t) => {
  // Two seconds, not one: the refreshed token must outlive the 50 retries on a loaded machine (with one,
  // a retry now and then met its successor expired too).
  const { baseUrl, refreshesSeen } = await listeningApi(t, { ACCESS_TOKEN_TTL: '2' })
  const first = createAuthClient({ baseUrl, transport: 'body', proactiveRefresh: false })
  const storage = memoryStorage()
  const signIn = createAuthClient({ baseUrl, transport: 'body', storage, proactiveRefresh: false })
  await signIn.login(USERS.alice)
  await sleep(2200) // the access token is now expired on the server
  // A client that believes its token is still good (a clock that is off, a token stored a while ago):
  // every call meets the server's ACCESS_TOKEN_EXPIRED.
  const believing = memoryStorage({ ...(storage.value as StoredTokens), accessExpiresAt: Date.now() + 60_000 })
  const auth = createAuthClient({ baseUrl, transport: 'body', storage: believing, proactiveRefresh: false })
  const answers = await Promise.all(Array.from({ length: 50 }, () => auth.fetch('/api/profile')))
  t.same([...new Set(answers.map(a => a.status))], [200], 'all 50 answered 200')
  t.equal((await answers[0]?.json() as { username: string }).username, USERS.alice.username)
  t.equal(refreshesSeen(), 1, 'one /auth/refresh for all of them')
  t.not(believing.value?.refreshToken, storage.value?.refreshToken, 'the rotated tokens were stored')

  const { data, error } = await auth.api.GET('/api/profile')
  t.equal(error, undefined)
  t.equal(data?.username, USERS.alice.username, 'the typed client works with the same session')
  await t.rejects(first.fetch('/api/profile'), SignedOutError, 'a client that never signed in refuses to call')
})

t.test('the expiry reached while idle: the next calls refresh first, once', async (t) => {
  const { baseUrl, refreshesSeen } = await listeningApi(t, { ACCESS_TOKEN_TTL: '2' })
  const auth = createAuthClient({ baseUrl, transport: 'body', proactiveRefresh: false })
  await auth.login(USERS.alice)
  await sleep(1100) // within the refresh margin: expires_in 2, less 1 s of slack
  const answers = await Promise.all(Array.from({ length: 20 }, () => auth.fetch('/api/profile')))
  t.same([...new Set(answers.map(a => a.status))], [200])
  t.equal(refreshesSeen(), 1, 'one refresh, before the calls went out')
})

t.test('the proactive refresh keeps a quiet session fresh, one refresh per lifetime', async (t) => {
  const { baseUrl, refreshesSeen } = await listeningApi(t, { ACCESS_TOKEN_TTL: '2' })
  const auth = createAuthClient({ baseUrl, transport: 'body' })
  await auth.login(USERS.alice)
  await sleep(2500)
  // expires_in 2, less a second of slack: a 1 s lifetime, refreshed 20 % (0.2 s) before its end.
  t.ok(refreshesSeen() >= 2 && refreshesSeen() <= 3, `refreshed ahead of each expiry (${refreshesSeen()} in 2.5 s: one per 0.8 s)`)
  t.equal((await auth.fetch('/api/profile')).status, 200)
  await auth.logout()
})

t.test('a refresh whose answer is lost on the way: the client retries with the same token and stays signed in', async (t) => {
  const { app, baseUrl, refreshesSeen } = await listeningApi(t, { ACCESS_TOKEN_TTL: '1' })
  const api = new URL(baseUrl)
  let dropped = 0
  // A network that delivers the first refresh to the API, then loses its answer.
  const proxy: Server = createServer((req, res) => {
    const upstream = httpRequest({ host: api.hostname, port: api.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      if (req.url === '/auth/refresh' && dropped === 0) {
        dropped++
        answer.resume()
        answer.on('end', () => { res.socket?.destroy() })
        return
      }
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    req.pipe(upstream)
  })
  await new Promise<void>(resolve => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { proxy.close() })
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`

  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl: proxyUrl, transport: 'body', storage, proactiveRefresh: false, retryDelayMs: 50 })
  const signedOut: number[] = []
  auth.onSignedOut(() => signedOut.push(Date.now()))
  await auth.login(USERS.alice)
  const loginToken = storage.value?.refreshToken
  await sleep(1100)
  const answer = await auth.fetch('/api/profile')
  t.equal(answer.status, 200, 'the call succeeded')
  t.equal(dropped, 1, 'after one refresh answer was lost')
  t.equal(refreshesSeen(), 2, 'the server saw the refresh and its retry')
  t.same(signedOut, [], 'never signed out')
  const successor = storage.value?.refreshToken
  t.not(successor, loginToken, 'the retry got the successor the lost answer carried')
  const direct = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: loginToken } })
  t.equal(direct.json().refresh_token, successor, 'the very successor the server rotated to (a replay in its window)')
})

t.test('a revoked session: onSignedOut fires once, every pending and later call rejects, storage is cleared', async (t) => {
  const { app, baseUrl } = await listeningApi(t)
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage, proactiveRefresh: false })
  let fired = 0
  const unsubscribe = auth.onSignedOut(() => { fired++ })
  await auth.login(USERS.alice)
  t.equal((await auth.fetch('/api/profile')).status, 200)
  // Another device ends the session (a password change, an admin, a logout elsewhere).
  await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(storage.value?.accessToken ?? '') })
  const calls = await Promise.allSettled(Array.from({ length: 5 }, () => auth.fetch('/api/profile')))
  t.same(calls.map(c => c.status === 'rejected' && c.reason instanceof SignedOutError), [true, true, true, true, true], 'all five reject with SignedOutError')
  t.equal(fired, 1, 'onSignedOut fired once')
  t.equal(storage.value, null, 'the stored tokens are gone')
  await t.rejects(auth.fetch('/api/profile'), SignedOutError, 'and later calls reject at once')
  unsubscribe()
  await auth.login(USERS.alice)
  await auth.logout()
  t.equal(fired, 1, 'an unsubscribed listener hears nothing more')
})

t.test('login errors and logout', async (t) => {
  const { baseUrl } = await listeningApi(t)
  const storage = memoryStorage()
  const auth = createAuthClient({ baseUrl, transport: 'body', storage })
  await t.rejects(auth.login({ username: USERS.alice.username, password: 'wrong' }), { constructor: AuthError, status: 401, code: 'INVALID_CREDENTIALS' })
  await auth.login(USERS.alice)
  const refreshToken = storage.value?.refreshToken ?? ''
  let fired = 0
  auth.onSignedOut(() => { fired++ })
  await auth.logout()
  t.equal(fired, 1, 'logout fires onSignedOut')
  t.equal(storage.value, null)
  const spent = await fetch(`${baseUrl}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: refreshToken }) })
  t.equal(spent.status, 401, 'the server ended the session')
})
