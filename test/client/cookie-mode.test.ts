import type { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { SignedOutError, createAuthClient, platformCoordination } from '../../client/src/index.js'
import { USERS, buildTestApp } from '../helpers/app.js'
import { logCapture } from '../helpers/log.js'

// The kit in cookie mode outside a browser: a small cookie jar stands in for the browser's, dropping
// a cookie at its Max-Age as browsers do, so the kit meets the API's answers to a missing cookie.

interface JarCookie { name: string, value: string, path: string, expiresAt: number }

function cookieJar () {
  const cookies = new Map<string, JarCookie>()
  const live = () => [...cookies.values()].filter(cookie => cookie.expiresAt > Date.now())
  const jarFetch: typeof fetch = async (input, init) => {
    const request = new Request(input, init)
    const path = new URL(request.url).pathname
    const matching = live()
      .filter(cookie => path === cookie.path || path.startsWith(cookie.path.endsWith('/') ? cookie.path : `${cookie.path}/`))
      .sort((a, b) => b.path.length - a.path.length) // longer paths first, as browsers send them
    const headers = new Headers(request.headers)
    if (matching.length > 0) headers.set('cookie', matching.map(c => `${c.name}=${c.value}`).join('; '))
    const response = await fetch(new Request(request, { headers }))
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';').map(part => part.trim())
      const [name = '', value = ''] = pair.split('=')
      const attr = Object.fromEntries(attributes.map(a => [a.split('=')[0]?.toLowerCase(), a.split('=')[1] ?? '']))
      if (attr.domain !== undefined) continue // this jar's host is an IP: no domain cookies
      const cookie = { name, value, path: attr.path ?? '/', expiresAt: Date.now() + Number(attr['max-age'] ?? 86_400) * 1000 }
      cookies.set(`${name};${cookie.path}`, cookie)
    }
    return response
  }
  return {
    fetch: jarFetch,
    plant: (cookie: JarCookie) => cookies.set(`${cookie.name};${cookie.path}`, cookie),
    drop: (name: string) => { for (const [key, cookie] of cookies) if (cookie.name === name) cookies.delete(key) },
    live,
  }
}

/** The API listening, and a cookie-mode client on a jar, logged in as alice; `signedOut` counts onSignedOut calls. */
async function signedInWithCookies (t: Test, env: NodeJS.ProcessEnv, logStream?: Writable) {
  const { app } = await buildTestApp(t, 'memory', env, logStream === undefined ? {} : { logStream })
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const jar = cookieJar()
  const auth = createAuthClient({ baseUrl, transport: 'cookie', fetch: jar.fetch, proactiveRefresh: false })
  let signedOut = 0
  auth.onSignedOut(() => { signedOut++ })
  await auth.login(USERS.alice)
  return { baseUrl, jar, auth, signedOut: () => signedOut }
}

t.test('cookie mode: a 401 for the access cookie the jar dropped at expiry is refreshed from the refresh cookie and retried', async (t) => {
  const { stream, records, requestUrls } = logCapture()
  const { baseUrl, jar, signedOut } = await signedInWithCookies(t, { ACCESS_TOKEN_TTL: '1', LOG_LEVEL: 'info' }, stream)
  t.same(jar.live().map(c => c.name).sort(), ['access_token', 'refresh_token'], 'the API set both cookies')
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.same(jar.live().map(c => c.name), ['refresh_token'], 'the access cookie is gone, as a browser drops it')
  // A second "tab" on the same cookies: it never logged in, so it knows no expiry and sends the call
  // as it is; only the API's 401 can tell it the access cookie is missing.
  const tab = createAuthClient({ baseUrl, transport: 'cookie', fetch: jar.fetch, proactiveRefresh: false })
  const answer = await tab.fetch('/api/profile')
  t.equal(answer.status, 200, 'the call succeeded')
  const completed = records().filter(line => line.msg === 'request completed').map(line => line.res as { statusCode: number })
  t.same(requestUrls().slice(-3), ['/api/profile', '/auth/refresh', '/api/profile'], 'the call, one refresh, the call again')
  t.same(completed.slice(-3).map(res => res.statusCode), [401, 200, 200], 'the first answer was the 401 for the missing cookie')
  t.equal(signedOut(), 0)
})

t.test('cookie mode: a doubled access cookie is retried once, after the answer expired the planted copy', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const jar = cookieJar()
  const auth = createAuthClient({ baseUrl, transport: 'cookie', fetch: jar.fetch })
  await auth.login(USERS.alice)
  jar.plant({ name: 'access_token', value: 'planted', path: '/api', expiresAt: Date.now() + 60_000 })
  const answer = await auth.fetch('/api/profile')
  t.equal(answer.status, 200, 'the retry, without the planted copy, succeeded')
  t.notOk(jar.live().some(c => c.value === 'planted'), 'the planted copy was expired by the refusal')
})

t.test('cookie mode: a doubled refresh cookie is retried once, not taken for a dead session', async (t) => {
  const { auth, jar, signedOut } = await signedInWithCookies(t, { ACCESS_TOKEN_TTL: '1' })
  // A sibling site of the domain plants a second refresh cookie on a longer path of the refresh route.
  jar.plant({ name: 'refresh_token', value: 'planted', path: '/auth/refresh', expiresAt: Date.now() + 60_000 })
  await new Promise(resolve => setTimeout(resolve, 1100))
  const answer = await auth.fetch('/api/profile')
  t.equal(answer.status, 200, 'the call succeeded after the refresh was retried')
  t.equal(signedOut(), 0, 'never signed out')
  t.notOk(jar.live().some(c => c.value === 'planted'), 'the planted copy was expired by the refusal')
})

t.test('cookie mode: a tab that was never signed in learns so with SignedOutError, and onSignedOut stays silent', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const auth = createAuthClient({ baseUrl, transport: 'cookie', fetch: cookieJar().fetch })
  let signedOut = 0
  auth.onSignedOut(() => { signedOut++ })
  await t.rejects(auth.fetch('/api/profile'), SignedOutError, 'no cookies, no session')
  t.equal(signedOut, 0, 'no session ended: nothing to announce')
})

t.test('cookie mode: when another tab\'s refresh is taken for this one but the cookie is still missing, this tab refreshes itself', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  const baseUrl = await app.listen({ port: 0, host: '127.0.0.1' })
  const jar = cookieJar()
  // Two "tabs" that share what tabs of one origin share: the lock and the expiry a refresh reached.
  const coordination = platformCoordination('test-tabs')
  const first = createAuthClient({ baseUrl, transport: 'cookie', fetch: jar.fetch, coordination })
  const second = createAuthClient({ baseUrl, transport: 'cookie', fetch: jar.fetch, coordination })
  let signedOut = 0
  second.onSignedOut(() => { signedOut++ })
  await first.login(USERS.alice) // the shared expiry is 14 minutes away
  jar.drop('access_token') // evicted, or cleared by the user: the refresh cookie is still there
  const answer = await second.fetch('/api/profile')
  t.equal(answer.status, 200, 'the call succeeded')
  t.equal(signedOut, 0, 'the session was not ended over a missing cookie')
  t.ok(jar.live().some(c => c.name === 'access_token'), 'a fresh access cookie is in the jar')
})
