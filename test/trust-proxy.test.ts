import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { USERS, buildTestApp } from './helpers/app.js'
import { setCookies } from './helpers/http.js'

const PROXY = '10.0.0.5'
const ENV = { TRUST_PROXY: '10.0.0.0/24', RATE_LIMIT_LOGIN_MAX: '2' }

function loginVia (app: FastifyInstance, peer: string, forwardedFor: string, password = 'wrong') {
  return app.inject({ method: 'POST', url: '/auth/login', remoteAddress: peer, headers: { 'x-forwarded-for': forwardedFor }, payload: { username: 'alice', password } })
}

t.test('from a trusted proxy, X-Forwarded-For names the client: each client has its own login budget', async (t) => {
  const { app } = await buildTestApp(t, 'redis', ENV)
  t.equal((await loginVia(app, PROXY, '198.51.100.1')).statusCode, 401)
  t.equal((await loginVia(app, PROXY, '198.51.100.1')).statusCode, 401)
  t.equal((await loginVia(app, PROXY, '198.51.100.1')).statusCode, 429, 'client 1 is limited')
  t.equal((await loginVia(app, PROXY, '198.51.100.2', USERS.alice.password)).statusCode, 200, 'client 2 behind the same proxy is not')
  t.equal((await loginVia(app, PROXY, '203.0.113.9, 198.51.100.1')).statusCode, 429, 'the address the proxy saw counts, not what the client prepended')
})

t.test('from an untrusted peer, X-Forwarded-For is ignored: forging it does not buy more attempts', async (t) => {
  const { app } = await buildTestApp(t, 'redis', ENV)
  const peer = '192.0.2.77'
  t.equal((await loginVia(app, peer, '198.51.100.1')).statusCode, 401)
  t.equal((await loginVia(app, peer, '198.51.100.2')).statusCode, 401)
  t.equal((await loginVia(app, peer, '198.51.100.3', USERS.alice.password)).statusCode, 429, 'counted against the peer address')
})

t.test('without TRUST_PROXY no peer is trusted, not even loopback', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { RATE_LIMIT_LOGIN_MAX: '1' })
  t.equal((await loginVia(app, '127.0.0.1', '198.51.100.1')).statusCode, 401)
  t.equal((await loginVia(app, '127.0.0.1', '198.51.100.2')).statusCode, 429)
})

t.test('the API\'s own origin for the CSRF check honours X-Forwarded-Proto/Host only from a trusted proxy', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { TRUST_PROXY: '10.0.0.0/24' })
  const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-auth-mode': 'cookie' }, payload: { username: USERS.alice.username, password: USERS.alice.password } })
  let refreshToken = setCookies(login).get('refresh_token')?.value ?? ''
  const forwarded = { origin: 'https://api.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.com' }

  const untrusted = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: '192.0.2.1', headers: { ...forwarded, cookie: `refresh_token=${refreshToken}` } })
  t.equal(untrusted.statusCode, 403, 'a client cannot claim to be the API by sending X-Forwarded-Host itself')

  const trusted = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: PROXY, headers: { ...forwarded, cookie: `refresh_token=${refreshToken}` } })
  t.equal(trusted.statusCode, 200, 'behind the trusted proxy, https://api.example.com is our own origin')
  refreshToken = setCookies(trusted).get('refresh_token')?.value ?? ''

  const wrongScheme = await app.inject({ method: 'POST', url: '/auth/refresh', remoteAddress: PROXY, headers: { ...forwarded, 'x-forwarded-proto': 'http', cookie: `refresh_token=${refreshToken}` } })
  t.equal(wrongScheme.statusCode, 403, 'the scheme is part of the origin')
})

t.test('malformed forwarded headers from a trusted proxy are client errors at worst, never a 5xx', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { TRUST_PROXY: '127.0.0.1' })
  for (const forwardedFor of ['garbage', '', ' , ,', '::ffff:1.2.3.4', 'x'.repeat(3000), '1.2.3.4, garbage', '[::1]:80', 'fe80::1%eth0']) {
    const login = await app.inject({ method: 'POST', url: '/auth/login', headers: { 'x-forwarded-for': forwardedFor, 'x-forwarded-host': 'x y', 'x-forwarded-proto': 'javascript' }, payload: { username: 'alice', password: 'wrong' } })
    t.equal(login.statusCode, 401, `login with X-Forwarded-For ${JSON.stringify(forwardedFor.slice(0, 20))}`)
    // The Origin spells exactly what the forwarded headers make of our own origin: only a comparison
    // of parsed origins (neither parses) refuses it, a comparison of strings would let it through.
    const cookieRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', headers: { 'x-forwarded-for': forwardedFor, 'x-forwarded-host': '::::', 'x-forwarded-proto': 'http', cookie: 'refresh_token=a.b.c', origin: 'http://::::' } })
    t.equal(cookieRefresh.statusCode, 403, 'a cookie refresh whose own origin does not parse is refused as cross-site, even from an Origin spelling it')
  }
})
