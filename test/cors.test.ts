import t from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { USERS, buildTestApp, testEnv } from './helpers/app.js'
import { bearer, loginTokens } from './helpers/http.js'

const APP_ORIGIN = 'https://app.example.com'
const ENV = { CORS_ORIGINS: `${APP_ORIGIN}, http://localhost:5173`, RATE_LIMIT_MAX: '2' }

function headerList (value: string | string[] | number | undefined): string[] {
  return String(value ?? '').split(',').map(s => s.trim().toLowerCase()).filter(s => s !== '')
}

t.test('a preflight from an allowed origin is answered with credentials, our headers and methods, and cached', async (t) => {
  const { app } = await buildTestApp(t, 'memory', ENV)
  const response = await app.inject({
    method: 'OPTIONS',
    url: '/auth/login',
    headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-auth-mode' },
  })
  t.equal(response.statusCode, 204)
  t.equal(response.headers['access-control-allow-origin'], APP_ORIGIN, 'the exact origin, never *')
  t.equal(response.headers['access-control-allow-credentials'], 'true')
  t.same(headerList(response.headers['access-control-allow-methods']).sort(), ['delete', 'get', 'head', 'post'])
  t.same(headerList(response.headers['access-control-allow-headers']).sort(), ['authorization', 'content-type', 'x-auth-mode'])
  t.equal(response.headers['access-control-max-age'], '600', 'browsers cache the preflight for 10 minutes')
  t.match(String(response.headers.vary), /origin/i, 'caches keep answers per origin')
})

t.test('an actual request from an allowed origin can read the body, Retry-After and the rate-limit headers', async (t) => {
  const { app } = await buildTestApp(t, 'memory', ENV)
  const tokens = await loginTokens(app, USERS.alice)
  const ok = await app.inject({ url: '/api/profile', headers: { origin: 'http://localhost:5173', ...bearer(tokens.access_token) } })
  t.equal(ok.statusCode, 200)
  t.equal(ok.headers['access-control-allow-origin'], 'http://localhost:5173')
  t.equal(ok.headers['access-control-allow-credentials'], 'true')
  const limited = await app.inject({ url: '/api/profile', headers: { origin: APP_ORIGIN, ...bearer(tokens.access_token) } })
  t.equal(limited.statusCode, 429, 'over RATE_LIMIT_MAX')
  t.equal(limited.headers['access-control-allow-origin'], APP_ORIGIN, 'the 429 carries CORS headers, so the client can read it')
  const exposed = headerList(limited.headers['access-control-expose-headers'])
  for (const header of ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'www-authenticate']) {
    t.ok(exposed.includes(header), `${header} is exposed`)
  }
})

t.test('foreign origins get no Access-Control-Allow-Origin, on preflights and on requests', async (t) => {
  const { app } = await buildTestApp(t, 'memory', ENV)
  for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.com', 'http://app.example.com', 'https://APP.example.com:8443', 'null']) {
    const preflight = await app.inject({ method: 'OPTIONS', url: '/auth/refresh', headers: { origin, 'access-control-request-method': 'POST' } })
    t.equal(preflight.headers['access-control-allow-origin'], undefined, `preflight from ${origin}`)
    const request = await app.inject({ method: 'POST', url: '/auth/login', headers: { origin }, payload: { username: 'alice', password: 'x' } })
    t.equal(request.headers['access-control-allow-origin'], undefined, `request from ${origin}`)
  }
})

t.test('without CORS_ORIGINS no origin is allowed', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { CORS_ORIGINS: '' })
  const response = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' } })
  t.equal(response.headers['access-control-allow-origin'], undefined)
})

t.test('CORS_ORIGINS must list exact origins', async (t) => {
  for (const bad of ['*', 'app.example.com', 'https://app.example.com/', 'https://app.example.com/path', 'ftp://app.example.com', 'https://*.example.com']) {
    t.throws(() => loadConfig({ CORS_ORIGINS: bad }), ConfigError, `'${bad}' is refused`)
  }
  t.throws(() => loadConfig({ CORS_ORIGINS: 'https://app.example.com/' }), /did you mean https:\/\/app\.example\.com\?/, 'with a hint')
  t.same(loadConfig({ ...await testEnv('memory'), CORS_ORIGINS: 'https://a.example.com, http://localhost:5173' }).corsOrigins, ['https://a.example.com', 'http://localhost:5173'])
})

t.test('a half-formed preflight is a 400 in our JSON error shape, with the security headers', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { CORS_ORIGINS: APP_ORIGIN })
  const halfFormed: Array<Record<string, string>> = [{ 'access-control-request-method': 'POST' }, { origin: APP_ORIGIN }, {}]
  for (const headers of halfFormed) {
    const response = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers })
    t.equal(response.statusCode, 400, `${JSON.stringify(headers)}: 400`)
    t.same(response.json(), { statusCode: 400, error: 'Bad Request', message: 'A CORS preflight (OPTIONS) needs Origin and Access-Control-Request-Method headers', code: 'INVALID_PREFLIGHT' })
    t.equal(response.headers['x-content-type-options'], 'nosniff')
    t.equal(response.headers['cache-control'], 'no-store')
  }
  const whole = await app.inject({ method: 'OPTIONS', url: '/auth/login', headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' } })
  t.equal(whole.statusCode, 204, 'a whole one is answered')
})
