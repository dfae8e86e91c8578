import type { AddressInfo } from 'node:net'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { STORE_KINDS, USERS, buildTestApp, type StoreKind } from './helpers/app.js'
import { bearer, parseAnswers, profile, rawExchange, refresh, setCookies } from './helpers/http.js'
import { logCapture } from './helpers/log.js'

// A victim and an attacker, each with a cookie-mode session. The attacker's cookies are the ones a
// page on a sibling subdomain tosses (Domain=<parent>; a longer Path, so the browser sends them first).
const SPA = 'https://api.example.test'
const ENV = { CORS_ORIGINS: SPA }

interface CookieSession { access: string, refreshToken: string }

async function cookieSession (app: FastifyInstance, user: { username: string, password: string }): Promise<CookieSession> {
  const response = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { username: user.username, password: user.password } })
  const cookies = setCookies(response)
  return { access: cookies.get('access_token')?.value ?? '', refreshToken: cookies.get('refresh_token')?.value ?? '' }
}

function assertRefused (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.statusCode, 401, `${what}: 401`)
  t.same(response.json(), {
    statusCode: 401,
    error: 'Unauthorized',
    message: 'The request carries a token cookie more than once (another site may have planted one); nothing was used',
    code: 'DUPLICATE_TOKEN_COOKIE',
  }, `${what}: JSON error DUPLICATE_TOKEN_COOKIE`)
}

/** The `Domain/Path` pairs under which the answer expires each token cookie. */
function expired (response: LightMyRequestResponse): Record<string, string[]> {
  const byName: Record<string, string[]> = {}
  for (const cookie of response.cookies as Array<{ name: string, value: string, maxAge?: number, domain?: string, path?: string }>) {
    if (cookie.maxAge !== 0 || cookie.value !== '') continue
    ;(byName[cookie.name] ??= []).push(`${cookie.domain ?? '(host)'}${cookie.path ?? ''}`)
  }
  for (const list of Object.values(byName)) list.sort()
  return byName
}

async function suite (t: Test, store: StoreKind) {
  t.test('a protected route refuses two access cookies, even with a Bearer header, and expires the tossed ones', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const attacker = await cookieSession(app, USERS.root)
    // The browser's order: the tossed cookie (Path=/api) before the victim's own (Path=/).
    const tossed = `access_token=${attacker.access}; access_token=${victim.access}`

    const response = await profile(app, { cookie: tossed, host: 'api.example.test' })
    assertRefused(t, response, 'two access cookies')
    t.equal(response.headers['www-authenticate'], 'Bearer error="invalid_request", error_description="The request carries a token cookie more than once (another site may have planted one); nothing was used"', 'RFC 6750 invalid_request')
    t.same(expired(response), {
      access_token: ['(host)/api', '(host)/api/', '(host)/api/profile', 'api.example.test/', 'api.example.test/api', 'api.example.test/api/', 'api.example.test/api/profile', 'example.test/', 'example.test/api', 'example.test/api/', 'example.test/api/profile'],
    }, 'the doubled name, under every Domain a sibling could have tossed it, at every path the request matches; never the API\'s own host-only cookie at Path=/')

    assertRefused(t, await profile(app, { cookie: tossed, ...bearer(victim.access) }), 'with a Bearer header too')
    assertRefused(t, await app.inject({ method: 'GET', url: '/api/admin', headers: { cookie: `access_token=${attacker.access}; refresh_token=x; access_token=${attacker.access}` } }), 'the same cookie twice, on /api/admin')
    assertRefused(t, await profile(app, { cookie: `access_token=${attacker.access};  access_token =${victim.access}` }), 'spaces around the second name')

    t.equal((await profile(app, { cookie: `access_token=${victim.access}` })).json().username, USERS.alice.username, 'the victim\'s own cookie alone still works')
    t.equal((await profile(app, bearer(attacker.access))).json().username, USERS.root.username, 'nothing of the attacker\'s was spent either')
  })

  t.test('names that merely contain a token cookie\'s name are not duplicates', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const response = await profile(app, { cookie: `xaccess_token=1; note=access_token; access_token=${victim.access}; refresh_token_old=2` })
    t.equal(response.statusCode, 200, 'one access_token among look-alikes')
  })

  t.test('a cookie refresh with two refresh cookies is refused and spends neither token', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const attacker = await cookieSession(app, USERS.root)
    const tossed = `refresh_token=${attacker.refreshToken}; refresh_token=${victim.refreshToken}`

    const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: tossed, origin: SPA, host: 'api.example.test' } })
    assertRefused(t, response, 'cookie refresh')
    t.equal(response.headers['www-authenticate'], undefined, 'no Bearer challenge off the protected routes')
    t.same(expired(response), {
      refresh_token: ['(host)/', '(host)/auth/', '(host)/auth/refresh', 'api.example.test/', 'api.example.test/auth', 'api.example.test/auth/', 'api.example.test/auth/refresh', 'example.test/', 'example.test/auth', 'example.test/auth/', 'example.test/auth/refresh'],
    }, 'never the API\'s own refresh cookie at Path=/auth')
    t.notOk(setCookies(response).get('refresh_token')?.value, 'no new refresh cookie')

    const withBody = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: tossed, origin: SPA }, payload: { refresh_token: victim.refreshToken } })
    assertRefused(t, withBody, 'with a refresh token in the body too')
    const accessTwice = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: 'access_token=a; access_token=b' }, payload: { refresh_token: victim.refreshToken } })
    assertRefused(t, accessTwice, 'a body refresh while the access cookie is doubled')

    t.equal((await refresh(app, victim.refreshToken)).statusCode, 200, 'the victim\'s refresh token was not spent')
    t.equal((await refresh(app, attacker.refreshToken)).statusCode, 200, 'nor the attacker\'s')
  })

  t.test('a cookie refresh from a foreign origin with doubled cookies is still a CSRF refusal first', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const response = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `refresh_token=x.y.z; refresh_token=${victim.refreshToken}`, origin: 'https://evil.example.test' } })
    t.equal(response.statusCode, 403)
    t.equal((await refresh(app, victim.refreshToken)).statusCode, 200, 'nothing spent')
  })

  t.test('logout with doubled cookies answers 204, spends nothing and expires the cookies', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const attacker = await cookieSession(app, USERS.root)
    const response = await app.inject({
      method: 'POST',
      url: '/auth/logout',
      headers: { cookie: `access_token=${attacker.access}; access_token=${victim.access}; refresh_token=${victim.refreshToken}`, origin: SPA, host: 'api.example.test' },
    })
    t.equal(response.statusCode, 204, '204 as always')
    t.same(expired(response), {
      access_token: ['(host)/', '(host)/auth', '(host)/auth/', '(host)/auth/logout', 'api.example.test/', 'api.example.test/auth', 'api.example.test/auth/', 'api.example.test/auth/logout', 'example.test/', 'example.test/auth', 'example.test/auth/', 'example.test/auth/logout'],
      refresh_token: ['(host)/auth'],
    }, 'the cookies logout always clears, and every planted copy of the doubled one')
    t.equal((await profile(app, bearer(victim.access))).statusCode, 200, 'the victim\'s access token is not denied')
    t.equal((await profile(app, bearer(attacker.access))).statusCode, 200, 'nor the attacker\'s')
    t.equal((await refresh(app, victim.refreshToken)).statusCode, 200, 'and the victim\'s session was not ended')
  })

  t.test('logout with doubled cookies ends nothing, even the session its Bearer header or body token names', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    const other = await cookieSession(app, USERS.alice)
    const doubled = `access_token=${victim.access}; access_token=${victim.access}`
    const withBearer = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: doubled, ...bearer(other.access) } })
    t.equal(withBearer.statusCode, 204, 'Bearer + doubled cookies: 204')
    const withBody = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: doubled }, payload: { refresh_token: other.refreshToken } })
    t.equal(withBody.statusCode, 204, 'body token + doubled cookies: 204')
    t.equal((await profile(app, bearer(other.access))).statusCode, 200, 'the Bearer token\'s session lives on')
    t.equal((await refresh(app, other.refreshToken)).statusCode, 200, 'and the body token was not spent')
  })

  t.test('two Cookie header lines count as one header', async (t) => {
    const { app } = await buildTestApp(t, store, ENV)
    const victim = await cookieSession(app, USERS.alice)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const raw = await rawExchange(port, `GET /api/profile HTTP/1.1\r\nHost: localhost\r\nCookie: access_token=${victim.access}\r\nCookie: access_token=${victim.access}\r\nConnection: close\r\n\r\n`)
    const [answer] = parseAnswers(raw)
    t.equal(answer?.status, 401)
    t.equal(JSON.parse(answer?.body ?? '{}').code, 'DUPLICATE_TOKEN_COOKIE')
  })
}

for (const store of STORE_KINDS) t.test(`${store} store`, t => suite(t, store))

t.test('the refusal is audited once per client and window, without cookie values', async (t) => {
  const { stream, records } = logCapture()
  const { app } = await buildTestApp(t, 'memory', { ...ENV, LOG_LEVEL: 'info', TRUST_PROXY: '10.0.0.1' }, { logStream: stream })
  const victim = await cookieSession(app, USERS.alice)
  const cookie = `access_token=${victim.access}; access_token=${victim.access}; refresh_token=${victim.refreshToken}; refresh_token=${victim.refreshToken}`
  for (let i = 0; i < 5; i++) await profile(app, { cookie })
  await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie } })
  await profile(app, { cookie, 'x-forwarded-for': '203.0.113.9' }) // not from the trusted proxy: the same client
  // Another client, through the trusted proxy, on the refresh route.
  await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '10.0.0.1', headers: { cookie: `refresh_token=${victim.refreshToken}; refresh_token=x`, 'x-forwarded-for': '198.51.100.4' } })
  await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '10.0.0.1', headers: { cookie: `refresh_token=${victim.refreshToken}; refresh_token=x`, 'x-forwarded-for': '198.51.100.4' } })
  const audits = records().filter(line => line.event === 'cookie_tossing')
  t.equal(audits.length, 2, 'one line for six refusals from one client, one for two from another')
  t.match(audits[0], { level: 40, event: 'cookie_tossing', ip: '127.0.0.1', cookies: ['access_token', 'refresh_token'], reqId: String })
  t.match(audits[1], { level: 40, event: 'cookie_tossing', ip: '198.51.100.4', cookies: ['refresh_token'] })
  t.same(Object.keys(audits[0] ?? {}).sort(), ['cookies', 'event', 'hostname', 'ip', 'level', 'msg', 'pid', 'reqId', 'time'])
  const text = JSON.stringify(records())
  t.notOk(text.includes(victim.access), 'no access token in the log')
  t.notOk(text.includes(victim.refreshToken), 'no refresh token in the log')
})

t.test('where a tossed cookie can live: each parent domain of the host and host-only, each path the request matches', async (t) => {
  const { tossedCookieScopes, MAX_EXPIRIES } = await import('../plugins/presented-tokens.js')
  const scopes = (path: string, host: string, names: Array<'access_token' | 'refresh_token'> = ['refresh_token']) =>
    tossedCookieScopes(path, host, names).map(s => `${s.name === 'access_token' ? 'A ' : ''}${s.domain ?? '(host)'}${s.path}`)
  t.same(scopes('/auth/refresh', 'API.Example.test'), [
    'example.test/auth/refresh', 'example.test/auth/', 'example.test/auth', 'example.test/',
    'api.example.test/auth/refresh', 'api.example.test/auth/', 'api.example.test/auth', 'api.example.test/',
    '(host)/auth/refresh', '(host)/auth/', '(host)/',
  ], 'lower-cased; a sibling\'s domain first, then the host\'s, then host-only, the most specific path first; not the API\'s own cookie (host-only, /auth)')
  t.same(scopes('/api/', 'a.b', ['access_token']), ['A a.b/api/', 'A a.b/api', 'A a.b/', 'A (host)/api/', 'A (host)/api'], 'a trailing slash: /api/ matches, so does /api')
  t.same(scopes('/api/profile', 'localhost', ['access_token']), ['A (host)/api/profile', 'A (host)/api/', 'A (host)/api'], 'a one-label host: host-only copies only')
  t.same(scopes('/auth/refresh', '127.0.0.1'), ['(host)/auth/refresh', '(host)/auth/', '(host)/'], 'an IP address: host-only too')
  t.same(scopes('/auth/refresh', 'evil.test;path=/'), ['(host)/auth/refresh', '(host)/auth/', '(host)/'], 'a Host that would inject cookie attributes is not echoed')
  t.same(scopes('/a;b/c', 'x.y'), ['x.y/', '(host)/'], 'a path with characters a cookie path cannot hold: only the safe prefixes')
  const many = tossedCookieScopes('/api/profile', 'api.eu.corp.example.com', ['access_token', 'refresh_token'])
  t.equal(many.length, MAX_EXPIRIES, `a five-label host with both names doubled: cut at ${MAX_EXPIRIES}`)
  t.same([...new Set(many.map(s => s.domain))], ['example.com', 'corp.example.com', 'eu.corp.example.com'], 'the parents nearest the site come first, every path of each')
  const fourLabels = tossedCookieScopes('/auth/refresh', 'api.eu.example.test', ['access_token', 'refresh_token']).map(s => `${s.name} ${s.domain ?? '(host)'}${s.path}`)
  t.ok(fourLabels.includes('access_token example.test/') && fourLabels.includes('refresh_token eu.example.test/'), 'a parent at Path=/ is never cut')
  for (const host of ['api-.example.test', '-api.example.test', `${'a'.repeat(64)}.example.test`, 'api..example.test']) {
    t.same(scopes('/auth/refresh', host), ['(host)/auth/refresh', '(host)/auth/', '(host)/'], `${host.slice(0, 20)}: not a Domain the cookie library accepts, host-only copies only`)
  }
})

t.test('the refusal\'s headers stay small enough for a proxy to pass them (nginx buffers 4–8 KB)', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { ...ENV, TRUST_PROXY: '127.0.0.1' })
  const response = await app.inject({
    url: '/api/profile',
    headers: { cookie: 'access_token=a; access_token=b; refresh_token=c; refresh_token=d', 'x-forwarded-host': 'api.eu.corp.example.com' },
  })
  t.equal(response.statusCode, 401)
  const setCookie = [response.headers['set-cookie'] ?? []].flat()
  let bytes = 0
  for (const [name, value] of Object.entries(response.headers)) for (const line of [value ?? ''].flat()) bytes += `${name}: ${String(line)}\r\n`.length
  t.ok(setCookie.length <= 24, `${setCookie.length} expiries`)
  t.ok(bytes < 4096, `all headers together: ${bytes} bytes`)
})

t.test('a Host the cookie library would refuse as a Domain still gets the 401, never a 500', async (t) => {
  const { app } = await buildTestApp(t, 'memory', ENV)
  for (const host of ['api-.example.test', `${'a'.repeat(64)}.example.test`]) {
    const refused = await profile(app, { cookie: 'access_token=a; access_token=b', host })
    t.equal(refused.statusCode, 401, `${host.slice(0, 20)}: 401`)
    t.same(expired(refused), { access_token: ['(host)/api', '(host)/api/', '(host)/api/profile'] }, 'host-only expiries only')
    const logout = await app.inject({ method: 'POST', url: '/auth/logout', headers: { cookie: 'access_token=a; access_token=b', host } })
    t.equal(logout.statusCode, 204, 'logout: 204')
  }
})
