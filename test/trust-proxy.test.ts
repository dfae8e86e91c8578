import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { setCookies } from './helpers/http.js'
import { logCapture } from './helpers/log.js'
import { keysUnder, withRedis } from './helpers/redis.js'

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

for (const store of STORE_KINDS) {
  t.test(`${store} store: forwarded addresses are normalised before they count (ports, brackets, zones, mapped IPv4, IPv6 /64)`, async (t) => {
    const { app } = await buildTestApp(t, store, { TRUST_PROXY: PROXY, RATE_LIMIT_LOGIN_MAX: '5' })
    const ports = []
    for (let port = 40001; port <= 40007; port++) ports.push((await loginVia(app, PROXY, `198.51.100.7:${port}`)).statusCode)
    t.same(ports, [401, 401, 401, 401, 401, 429, 429], 'one client whatever source port the proxy wrote')

    const spellings = ['[2001:db8::5]', '2001:db8::6', '[2001:db8::7]:443', '2001:DB8:0:0:ffff::1', 'fe80::1%eth0', '[fe80::2]']
    const v6 = []
    for (const spelling of spellings) v6.push((await loginVia(app, PROXY, spelling)).statusCode)
    t.same(v6, [401, 401, 401, 401, 401, 401], 'six tries over two /64s')
    t.equal((await loginVia(app, PROXY, '2001:db8::99')).statusCode, 401, 'the fifth in 2001:db8::/64')
    t.equal((await loginVia(app, PROXY, '[2001:db8:0:0:1::]:1')).statusCode, 429, 'the sixth is refused, however it is spelled')

    const mapped = []
    for (const spelling of ['::ffff:192.0.2.50', '192.0.2.50', '[::ffff:192.0.2.50]:9', '192.0.2.50:80', '::ffff:c000:232']) mapped.push((await loginVia(app, PROXY, spelling)).statusCode)
    t.same(mapped, [401, 401, 401, 401, 401], 'an IPv4-mapped IPv6 address is that IPv4 address…')
    t.equal((await loginVia(app, PROXY, '192.0.2.50')).statusCode, 429, '…and shares its budget')
  })

  t.test(`${store} store: a forwarded value that is not an address counts as the proxy that sent it, never as a key of its own`, async (t) => {
    const { stream, records } = logCapture()
    const { app, config } = await buildTestApp(t, store, { TRUST_PROXY: PROXY, RATE_LIMIT_LOGIN_MAX: '5', LOG_LEVEL: 'info' }, { logStream: stream })
    const garbage = ['foo', '{user:x}', 'x'.repeat(8000), 'unknown', '1.2.3.4.5', '198.51.100.7:port']
    const statuses = []
    for (const value of garbage) statuses.push((await loginVia(app, PROXY, value)).statusCode)
    t.same(statuses, [401, 401, 401, 401, 401, 429], 'all six count against the proxy\'s address (the fifth is the last allowed); none is a 400')

    const lines = records()
    const limited = lines.find(line => line.event === 'rate_limited')
    t.equal(limited?.ip, PROXY, 'the audit line names the proxy')
    const addresses = new Set(lines.filter(line => line.req !== undefined).map(line => (line.req as { remoteAddress: string }).remoteAddress))
    t.same([...addresses], [PROXY], 'every request line records the normalised address')
    t.notOk(JSON.stringify(lines).includes('{user:x}'), 'the raw value is in no log line')

    if (config.redisUrl !== undefined) {
      const keys = await withRedis(config.redisUrl, redis => keysUnder(redis, config.redisKeyPrefix))
      const rateKeys = keys.filter(key => key.includes('rate:'))
      t.ok(rateKeys.length > 0, 'the limits counted in Redis')
      t.same(rateKeys.filter(key => !/:10\.0\.0\.5$/.test(key)), [], `every counter is keyed by the proxy's address (${rateKeys.length} keys)`)
    }
  })
}

t.test('a trusted proxy named in X-Forwarded-For with a port or brackets is still a proxy, not the client', async (t) => {
  const { app } = await buildTestApp(t, 'memory', { TRUST_PROXY: '10.0.0.0/24', RATE_LIMIT_LOGIN_MAX: '2' })
  const statuses = []
  for (const chain of ['198.51.100.7, 10.0.0.6:8080', '198.51.100.7, [10.0.0.6]', '198.51.100.7:5000, [10.0.0.6]:80']) statuses.push((await loginVia(app, PROXY, chain)).statusCode)
  t.same(statuses, [401, 401, 429], 'all three count as 198.51.100.7 (the third is over its limit of two)')
  t.equal((await loginVia(app, PROXY, '198.51.100.8, 10.0.0.6:8080', USERS.alice.password)).statusCode, 200, 'another client behind the same proxies has its own budget')
  const mappedPeer = await app.inject({ method: 'POST', url: '/auth/login', remoteAddress: '::ffff:10.0.0.5', headers: { 'x-forwarded-for': '198.51.100.7' }, payload: { username: 'alice', password: 'wrong' } })
  t.equal(mappedPeer.statusCode, 429, 'a proxy whose socket address is IPv4-mapped is trusted too')
})
