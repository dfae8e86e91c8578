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
  const { app } = await buildTestApp(t, 'memory', { ...ENV, LOG_LEVEL: 'info' }, { logStream: stream })
  const session = await cookieSession(app)
  const response = await refreshByCookie(app, session.cookie, { origin: 'https://evil.example.com' })
  t.equal(response.statusCode, 403)
  await refreshByCookie(app, session.cookie, { referer: 'https://evil.example.com/reset?token=their-secret' })
  await refreshByCookie(app, session.cookie, { referer: 'not a url?token=their-secret' })
  await refreshByCookie(app, session.cookie, { origin: 'null' })
  const audits = records().filter(line => line.event === 'csrf_refused')
  t.same(audits.map(line => Object.keys(line).sort()), Array(4).fill(['event', 'level', 'msg', 'origin', 'pid', 'hostname', 'reqId', 'time'].sort()), 'the event, the origin and the usual log fields: nothing else about the request')
  t.match(audits[0], { level: 40, event: 'csrf_refused', origin: 'https://evil.example.com', reqId: String })
  t.same(audits.slice(1).map(line => line.origin), ['https://evil.example.com', '(unparseable Referer)', 'null'], 'a Referer is logged as its origin only')
  const text = JSON.stringify(records())
  t.notOk(text.includes(session.refreshToken), 'no token in the log')
  t.notOk(text.includes('their-secret'), 'nothing of the Referer\'s path or query in the log')
})

t.test('a state-changing route that declares no CSRF protection stops the app at start-up', async (t) => {
  for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', ['GET', 'POST']] as const) {
    await t.rejects(buildTestApp(t, 'memory', ENV, { later: app => app.route({ method: [method].flat(), url: '/api/settings', handler: async () => ({}) }) }), { message: /^(GET,)?(POST|PUT|PATCH|DELETE) \/api\/settings: a state-changing route must declare its CSRF protection/ }, `${String(method)}: refused`)
  }
  // A preHandler of its own is not protection.
  await t.rejects(buildTestApp(t, 'memory', ENV, { later: app => app.post('/api/settings', { preHandler: [async () => {}] }, async () => ({})) }), /must declare its CSRF protection/, 'another preHandler does not count')
  // GET routes need nothing; `config: { csrf: false }` is a declaration too.
  const { app: declared } = await buildTestApp(t, 'memory', ENV, {
    later: app => {
      app.get('/api/things', async () => ({}))
      app.post('/auth/forgotten', { config: { csrf: false } }, async () => ({ ok: true }))
    },
  })
  t.equal((await declared.inject({ method: 'POST', url: '/auth/forgotten', headers: { origin: 'https://evil.example.com', cookie: 'access_token=x' } })).statusCode, 200, 'an opted-out route is not checked')
})

t.test('a state-changing route declared with fastify.secured() is CSRF-protected without saying more', async (t) => {
  let handled = 0
  const { app } = await buildTestApp(t, 'memory', ENV, { later: app => app.put('/api/settings', app.secured({}), async () => { handled++; return { saved: true } }) })
  const session = await cookieSession(app)
  const forged = await app.inject({ method: 'PUT', url: '/api/settings', headers: { cookie: session.cookie, origin: 'https://evil.example.com' } })
  assertRefused(t, forged, 'a cookie PUT from a foreign origin')
  t.equal(handled, 0, 'the handler never ran')
  const fromSpa = await app.inject({ method: 'PUT', url: '/api/settings', headers: { cookie: session.cookie, origin: SPA } })
  t.equal(fromSpa.statusCode, 200, 'the same request from the SPA')
  const withBearer = await app.inject({ method: 'PUT', url: '/api/settings', headers: { ...bearer(session.access), origin: 'https://evil.example.com' } })
  t.equal(withBearer.statusCode, 200, 'a Bearer request from anywhere')
  t.equal(handled, 2)
})
