import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { STORE_KINDS, USERS, buildTestApp, type StoreKind } from './helpers/app.js'
import { bearer, profile, refresh, setCookies } from './helpers/http.js'
import { logCapture } from './helpers/log.js'

const SPA = 'https://app.example.com'
const ENV = { CORS_ORIGINS: SPA }

/** A cookie-mode session: the cookies a browser would hold, as a Cookie header. */
async function cookieSession (app: FastifyInstance) {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { username: USERS.alice.username, password: USERS.alice.password } })
  const cookies = setCookies(response)
  const access = cookies.get('access_token')?.value ?? ''
  const refreshToken = cookies.get('refresh_token')?.value ?? ''
  return { access, refreshToken, cookie: `access_token=${access}; refresh_token=${refreshToken}` }
}

function refreshByCookie (app: FastifyInstance, cookie: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie, ...headers } })
}

function assertRefused (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.statusCode, 403, `${what}: 403`)
  t.match(response.json(), { statusCode: 403, error: 'Forbidden', code: 'CROSS_SITE_REQUEST' }, `${what}: JSON error`)
}

async function suite (t: Test, store: StoreKind) {
  t.test('a cookie refresh from a foreign origin is refused before the token is spent', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const session = await cookieSession(app)
    const foreign: Array<Record<string, string>> = [
      { origin: 'https://evil.example.com' },
      { origin: 'https://api.example.com.evil.com' },
      { origin: 'null' },
      { origin: 'garbage' },
      { referer: 'https://evil.example.com/page?x=1' },
      { referer: 'not a url' },
      { origin: 'https://evil.example.com', referer: `${SPA}/` },
    ]
    for (const headers of foreign) {
      assertRefused(t, await refreshByCookie(app, session.cookie, headers), JSON.stringify(headers))
    }
    const allowed = await refreshByCookie(app, session.cookie, { origin: SPA })
    t.equal(allowed.statusCode, 200, 'the same cookie from an allowed origin still works: nothing was spent')
  })

  t.test('allowed: the API\'s own origin, CORS_ORIGINS, a same-origin Referer, and no Origin/Referer at all', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const allowed: Array<Record<string, string>> = [{ origin: 'http://localhost' }, { origin: 'http://localhost:80' }, { origin: SPA }, { referer: `${SPA}/settings` }, { referer: 'http://localhost/docs' }, {}]
    for (const headers of allowed) {
      const session = await cookieSession(app)
      t.equal((await refreshByCookie(app, session.cookie, headers)).statusCode, 200, JSON.stringify(headers))
    }
  })

  t.test('a cookie logout from a foreign origin is refused and the session lives on', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const session = await cookieSession(app)
    assertRefused(t, await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie, origin: 'https://evil.example.com' } }), 'logout')
    t.equal((await profile(app, bearer(session.access))).statusCode, 200, 'the access token still works')
    const own = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: session.cookie, origin: SPA } })
    t.equal(own.statusCode, 204, 'from the SPA it logs out')
    t.equal((await profile(app, bearer(session.access))).statusCode, 401)
  })

  t.test('tokens in the body or the Bearer header are not subject to the check', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: USERS.alice.username, password: USERS.alice.password } })
    const tokens = login.json()
    const refreshed = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { origin: 'https://evil.example.com' }, payload: { refresh_token: tokens.refresh_token } })
    t.equal(refreshed.statusCode, 200, 'body refresh from any origin')
    const stale = await cookieSession(app)
    // A Bearer logout that names its refresh token in the body uses no cookie, even with cookies present.
    const logout = await app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { origin: 'https://evil.example.com', cookie: stale.cookie, ...bearer(refreshed.json().access_token) },
      payload: { refresh_token: refreshed.json().refresh_token },
    })
    t.equal(logout.statusCode, 204, 'Bearer + body logout from any origin')
    t.equal((await refresh(app, refreshed.json().refresh_token)).statusCode, 401, 'and it did log out')
    t.equal((await refreshByCookie(app, stale.cookie)).statusCode, 200, 'the cookie session it did not use lives on')
  })

  t.test('a Bearer logout that falls back to the refresh cookie is a cookie request', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const session = await cookieSession(app)
    const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: { origin: 'https://evil.example.com', cookie: `refresh_token=${session.refreshToken}`, ...bearer(session.access) } })
    assertRefused(t, response, 'Bearer + refresh cookie')
  })

  t.test('safe methods are never refused: GET with the access cookie from anywhere', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const session = await cookieSession(app)
    t.equal((await profile(app, { cookie: `access_token=${session.access}`, origin: 'https://evil.example.com' })).statusCode, 200)
  })
}

for (const store of STORE_KINDS) t.test(`${store} store`, t => suite(t, store))

t.test('the refusal is audited with the origin, and nothing else about the request', async (t) => {
  const { stream, records } = logCapture()
  const { app } = await buildTestApp(t, 'memory', { ...ENV, LOG_LEVEL: 'info' }, stream)
  const session = await cookieSession(app)
  const response = await refreshByCookie(app, session.cookie, { origin: 'https://evil.example.com' })
  t.equal(response.statusCode, 403)
  const audit = records().find(line => line.event === 'csrf_refused')
  t.match(audit, { level: 40, event: 'csrf_refused', origin: 'https://evil.example.com', reqId: String })
  t.notOk(JSON.stringify(records()).includes(session.refreshToken), 'no token in the log')
})
