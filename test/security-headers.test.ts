import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, parseAnswers, rawExchange, setCookies } from './helpers/http.js'
import { PrivateRedis } from './helpers/redis.js'

function assertHelmet (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(response.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.match(response.headers['strict-transport-security'], /max-age=\d+/, `${what}: HSTS`)
  t.equal(response.headers['x-frame-options'], 'SAMEORIGIN', `${what}: X-Frame-Options`)
  t.equal(response.headers['referrer-policy'], 'no-referrer', `${what}: Referrer-Policy`)
  t.equal(response.headers['x-powered-by'], undefined, `${what}: no X-Powered-By`)
}

const API_CSP = "default-src 'none';frame-ancestors 'none';base-uri 'none';form-action 'none'"

function assertApiHeaders (t: Test, response: LightMyRequestResponse, what: string) {
  t.equal(String(response.statusCode), what.split(' ').at(-1), `${what}: status`)
  assertHelmet(t, response, what)
  t.equal(response.headers['content-security-policy'], API_CSP, `${what}: CSP`)
  t.equal(response.headers['cache-control'], 'no-store', `${what}: no-store`)
  if (response.statusCode !== 204) t.match(response.headers['content-type'], /^application\/json/, `${what}: JSON`)
}

t.test('every API answer carries the security headers, a deny-all CSP and Cache-Control: no-store', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { RATE_LIMIT_LOGIN_MAX: '1', CORS_ORIGINS: 'https://app.example.com' })
  const tokens = await loginTokens(app, USERS.alice)
  const cookieLogin = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, remoteAddress: '192.0.2.3', payload: { username: 'alice', password: USERS.alice.password } })
  const refreshCookie = setCookies(cookieLogin).get('refresh_token')?.value ?? ''
  const answers: Record<string, LightMyRequestResponse> = {
    'login 200': await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.1', payload: { username: 'root', password: USERS.root.password } }),
    'login 401': await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.2', payload: { username: 'root', password: 'wrong' } }),
    'login 429': await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '192.0.2.2', payload: { username: 'root', password: 'wrong' } }),
    'login 400': await app.inject({ method: 'POST', url: '/auth/login', payload: {} }),
    'refresh 200': await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token } }),
    'profile 200': await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) }),
    'profile 401': await app.inject({ url: '/api/profile' }),
    'logout 204': await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) }),
    'health 200': await app.inject({ url: '/health' }),
    'not found 404': await app.inject({ url: '/nope' }),
    // Raised by Fastify before routing, where no hook runs.
    'malformed URL 400': await app.inject({ url: '/api/%E0%A4%A' }),
    'cross-site cookie refresh 403': await app.inject({ method: 'POST', url: '/auth/refresh', headers: { cookie: `refresh_token=${refreshCookie}`, origin: 'https://evil.example' } }),
    'oversized body 413': await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice', password: 'x'.repeat(20_000) } }),
    'text body 415': await app.inject({ method: 'POST', url: '/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'alice' }),
  }
  for (const [what, response] of Object.entries(answers)) assertApiHeaders(t, response, what)
})

t.test('answers while Redis is down carry the security headers too', async (t) => {
  const redis = await PrivateRedis.start()
  t.teardown(() => redis.stop()) // after the app's own teardown (last in, first out)
  const { app } = await buildTestApp(t, 'redis', { REDIS_URL: redis.url })
  const tokens = await loginTokens(app, USERS.alice)
  await redis.stop()
  const answers: Record<string, LightMyRequestResponse> = {
    'profile 503': await app.inject({ url: '/api/profile', headers: bearer(tokens.access_token) }),
    'refresh 503': await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: tokens.refresh_token } }),
    'ready 503': await app.inject({ url: '/ready' }),
  }
  for (const [what, response] of Object.entries(answers)) assertApiHeaders(t, response, what)
  await redis.restart() // the app's teardown deletes its keys there
})

t.test('Swagger UI keeps its own CSP under the security headers', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { DOCS_ENABLED: 'true' })
  const page = await app.inject({ url: '/docs' })
  t.equal(page.statusCode, 200)
  assertHelmet(t, page, '/docs')
  t.match(page.headers['content-security-policy'], /script-src 'self'/, 'its CSP lets its own scripts run')
  t.notMatch(page.headers['content-security-policy'], /default-src 'none'/, 'not the API\'s deny-all one')
  t.match(page.headers['content-security-policy'], /style-src 'self' 'unsafe-inline';/, 'inline styles (set by Swagger UI at run time) allowed')
})

t.test('requests that break HTTP itself (refused by Node\'s parser, no Host, an unknown Expect) get our error shape and the security headers', async (t) => {
  const { app } = await buildTestApp(t, 'memory')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const cases = {
    'a header name with a control character': { bytes: 'GET /health HTTP/1.1\r\nHost: x\r\nBad\u0001Name: y\r\n\r\n', status: 400, message: 'Malformed HTTP request', code: 'HPE_INVALID_HEADER_TOKEN' },
    'a chunked body that is not chunked': { bytes: 'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n', status: 400, message: 'Malformed HTTP request', code: /^HPE_/ },
    'headers over 16 KiB': { bytes: `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, status: 431, message: 'The request headers are too large', code: 'HPE_HEADER_OVERFLOW' },
    'an HTTP/1.1 request without Host': { bytes: 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', status: 400, message: 'An HTTP/1.1 request must have a Host header', code: 'MISSING_HOST' },
    'an Expect other than 100-continue': { bytes: 'POST /auth/login HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}', status: 417, message: 'Only Expect: 100-continue is supported', code: 'UNSUPPORTED_EXPECTATION' },
  }
  for (const [what, { bytes, status, message, code }] of Object.entries(cases)) {
    const [answer, ...more] = parseAnswers(await rawExchange(port, bytes))
    t.equal(answer?.status, status, `${what}: ${status}`)
    t.match(JSON.parse(answer?.body ?? '{}'), { statusCode: status, message, code }, `${what}: our error shape`)
    t.match(answer?.headers, { 'content-type': /^application\/json/, 'cache-control': 'no-store', 'content-security-policy': API_CSP, 'x-content-type-options': 'nosniff', 'strict-transport-security': /max-age=\d+/, 'x-frame-options': 'SAMEORIGIN', connection: 'close' }, `${what}: the security headers`)
    t.equal(more.length, 0, `${what}: nothing else`)
  }
  const [http10] = parseAnswers(await rawExchange(port, 'GET /health HTTP/1.0\r\n\r\n'))
  t.equal(http10?.status, 200, 'HTTP/1.0 needs no Host')
})
