import { createHmac } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { STORE_KINDS, TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { stopTestRedis } from './helpers/redis.js'

/** More than the 16 KiB body limit. */
const OVERSIZED = 'x'.repeat(17 * 1024)
const JSON_TYPE = { 'content-type': 'application/json' }
const MULTIPART_BOUNDARY = 'bad-input-boundary'

/** A multipart/form-data body with the fields as parts. */
function multipart (fields: Record<string, string>): { headers: Record<string, string>, payload: string } {
  const parts = Object.entries(fields).map(([name, value]) =>
    `--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
  return {
    headers: { 'content-type': `multipart/form-data; boundary=${MULTIPART_BOUNDARY}` },
    payload: `${parts.join('')}--${MULTIPART_BOUNDARY}--\r\n`,
  }
}

/** The same string with its last character changed: same shape, wrong value. */
function lastCharChanged (value: string): string {
  return value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A')
}

/** An HS256 JWT with our header, signed with `key`: well-formed, but not ours unless the key is. */
function signJwt (claims: object, key: string): string {
  const encode = (part: object) => Buffer.from(JSON.stringify(part)).toString('base64url')
  const unsigned = `${encode({ alg: 'HS256', typ: 'at+jwt' })}.${encode(claims)}`
  return `${unsigned}.${createHmac('sha256', key).update(unsigned).digest('base64url')}`
}

function decodePayload (jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString())
}

interface Case {
  name: string
  request: InjectOptions
  /** the status expected; a list where more than one answer is acceptable */
  status: number | readonly number[]
  /** a pattern the message must match */
  message?: RegExp
}

/**
 * The response is a client error with the contract's error body: JSON, exactly
 * `{statusCode, error, message}` (and optionally `code`), nothing that looks like a stack trace.
 */
function assertClientError (t: Test, name: string, response: LightMyRequestResponse, status: number | readonly number[], message?: RegExp): void {
  const allowed = typeof status === 'number' ? [status] : status
  t.ok(allowed.includes(response.statusCode), `${name}: status ${response.statusCode}, expected ${allowed.join(' or ')}`)
  t.ok(response.statusCode >= 400 && response.statusCode < 500, `${name}: a 4xx`)
  t.match(response.headers['content-type'], /^application\/json(;|$)/, `${name}: content-type application/json`)
  t.notOk(response.body.includes('    at '), `${name}: no stack trace in the body`)
  t.notOk(response.body.includes('Error:'), `${name}: no 'Error:' in the body`)

  let body: unknown
  try {
    body = JSON.parse(response.body)
  } catch {
    t.fail(`${name}: the body is not JSON: ${JSON.stringify(response.body.slice(0, 200))}`)
    return
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    t.fail(`${name}: the body is not a JSON object: ${response.body.slice(0, 200)}`)
    return
  }
  const fields = body as Record<string, unknown>
  const keys = Object.keys(fields).sort()
  const expectedKeys = 'code' in fields ? ['code', 'error', 'message', 'statusCode'] : ['error', 'message', 'statusCode']
  t.same(keys, expectedKeys, `${name}: exactly statusCode, error, message (and code)`)
  t.equal(fields.statusCode, response.statusCode, `${name}: body statusCode is the status`)
  t.equal(fields.error, STATUS_CODES[response.statusCode], `${name}: error is the status text`)
  t.ok(typeof fields.message === 'string' && fields.message.length > 0, `${name}: a message`)
  if ('code' in fields) t.ok(typeof fields.code === 'string' && fields.code.length > 0, `${name}: code is a string`)
  if (message !== undefined) t.match(fields.message, message, `${name}: message ${message}`)
}

async function check (t: Test, app: FastifyInstance, c: Case): Promise<LightMyRequestResponse> {
  const response = await app.inject(c.request)
  assertClientError(t, c.name, response, c.status, c.message)
  return response
}

/** A JSON body as a raw string, sent as application/json. */
const rawJson = (url: string, payload: string): InjectOptions => ({ method: 'POST', url, headers: JSON_TYPE, payload })

t.teardown(() => stopTestRedis())

for (const store of STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    // Limits on, but high enough that dozens of bad logins from one address are not what is tested.
    const { app } = await buildTestApp(t, store, { RATE_LIMIT_LOGIN_MAX: '1000000', RATE_LIMIT_REFRESH_MAX: '1000000', RATE_LIMIT_MAX: '1000000' })
    const alice = USERS.alice
    const tokens = await loginTokens(app, alice)
    const access = tokens.access_token
    const refreshToken = tokens.refresh_token

    t.test('POST /auth/login', async (t) => {
      const url = '/auth/login'
      const post = (payload: unknown, headers: Record<string, string> = {}): InjectOptions =>
        ({ method: 'POST', url, headers, payload: payload as InjectOptions['payload'] })
      const wrongTypes: Array<[string, unknown]> = [
        ['a number', 42], ['an array', [alice.username]], ['an object', { $ne: null }], ['null', null], ['a boolean', true],
      ]
      const cases: Case[] = [
        { name: 'no body at all', request: { method: 'POST', url }, status: 400 },
        { name: 'an empty object', request: post({}), status: 400 },
        { name: 'missing username', request: post({ password: alice.password }), status: 400, message: /username/ },
        { name: 'missing password', request: post({ username: alice.username }), status: 400, message: /password/ },
        { name: 'empty username and password', request: post({ username: '', password: '' }), status: 400 },
        // The real password beside a wrong-typed username (and the reverse): a type confusion must not log in.
        ...wrongTypes.map(([type, value]): Case => ({ name: `username is ${type}`, request: post({ username: value, password: alice.password }), status: 400, message: /username/ })),
        ...wrongTypes.map(([type, value]): Case => ({ name: `password is ${type}`, request: post({ username: alice.username, password: value }), status: 400, message: /password/ })),
        { name: 'a JSON array body', request: rawJson(url, JSON.stringify([alice.username, alice.password])), status: 400 },
        { name: 'a JSON string body', request: rawJson(url, JSON.stringify(`${alice.username}:${alice.password}`)), status: 400 },
        { name: 'a JSON null body', request: rawJson(url, 'null'), status: 400 },
        { name: 'a JSON number body', request: rawJson(url, '12345'), status: 400 },
        { name: 'a JSON boolean body', request: rawJson(url, 'true'), status: 400 },
        { name: 'malformed JSON (truncated)', request: rawJson(url, '{"username": "alice", "password": '), status: 400 },
        { name: 'malformed JSON (single quotes)', request: rawJson(url, "{'username': 'alice'}"), status: 400 },
        { name: 'malformed JSON (trailing comma)', request: rawJson(url, '{"username": "alice", "password": "x",}'), status: 400 },
        { name: 'JSON with a __proto__ key', request: rawJson(url, `{"__proto__": {"admin": true}, "username": "alice", "password": "${alice.password}"}`), status: 400 },
        { name: 'a form body labelled JSON', request: rawJson(url, `username=alice&password=${alice.password}`), status: 400 },
        { name: 'an empty body labelled JSON', request: rawJson(url, ''), status: 400 },
        // text/plain is what a cross-site form can send without a preflight: it must never log in.
        { name: 'text/plain carrying valid credentials as JSON', request: post(JSON.stringify({ username: alice.username, password: alice.password }), { 'content-type': 'text/plain' }), status: 415 },
        { name: 'application/x-www-form-urlencoded', request: post(`username=alice&password=${alice.password}`, { 'content-type': 'application/x-www-form-urlencoded' }), status: 415 },
        { name: 'multipart/form-data', request: { method: 'POST', url, ...multipart({ username: alice.username, password: alice.password }) }, status: 415 },
        { name: 'application/xml', request: post('<login><username>alice</username></login>', { 'content-type': 'application/xml' }), status: 415 },
        { name: 'a body without content-type', request: post(Buffer.from(JSON.stringify({ username: alice.username, password: alice.password }))), status: 415 },
        { name: 'an oversized body', request: post({ username: alice.username, password: alice.password, padding: OVERSIZED }), status: 413 },
        { name: 'an oversized password', request: post({ username: alice.username, password: OVERSIZED }), status: 413 },
        { name: 'a username of 129 characters', request: post({ username: 'a'.repeat(129), password: alice.password }), status: 400, message: /username/ },
        { name: 'a password of 1025 characters', request: post({ username: alice.username, password: 'p'.repeat(1025) }), status: 400, message: /password/ },
        { name: 'X-Auth-Mode: weird', request: post({ username: alice.username, password: alice.password }, { 'x-auth-mode': 'weird' }), status: 400, message: /x-auth-mode/ },
        { name: 'X-Auth-Mode: Cookie (case differs)', request: post({ username: alice.username, password: alice.password }, { 'x-auth-mode': 'Cookie' }), status: 400, message: /x-auth-mode/ },
        { name: 'X-Auth-Mode: empty', request: post({ username: alice.username, password: alice.password }, { 'x-auth-mode': '' }), status: 400, message: /x-auth-mode/ },
        { name: 'bogus cookies and Authorization with a wrong password', request: post({ username: alice.username, password: 'wrong-password' }, { cookie: 'access_token=garbage; refresh_token=garbage', authorization: 'Bearer garbage' }), status: 401, message: /Invalid username or password/ },
        { name: 'an unknown user of the maximum length', request: post({ username: 'u'.repeat(128), password: 'p'.repeat(1024) }), status: 401, message: /Invalid username or password/ },
      ]
      for (const c of cases) {
        const response = await check(t, app, c)
        t.notMatch(response.body, /access_token|refresh_token/, `${c.name}: no token issued`)
        t.equal(response.headers['set-cookie'], undefined, `${c.name}: no cookie set`)
      }
    })

    t.test('POST /auth/refresh', async (t) => {
      const url = '/auth/refresh'
      const post = (payload: unknown, headers: Record<string, string> = {}): InjectOptions =>
        ({ method: 'POST', url, headers, payload: payload as InjectOptions['payload'] })
      const invalid = /refresh token is invalid/
      const cases: Case[] = [
        { name: 'no body and no cookie', request: { method: 'POST', url }, status: 401, message: invalid },
        { name: 'an empty object', request: post({}), status: 401, message: invalid },
        { name: 'only unknown fields', request: post({ token: refreshToken }), status: 401, message: invalid },
        { name: 'refresh_token is a number', request: post({ refresh_token: 42 }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is an array', request: post({ refresh_token: [refreshToken] }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is an object', request: post({ refresh_token: { token: refreshToken } }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is null', request: post({ refresh_token: null }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is a boolean', request: post({ refresh_token: true }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token longer than 256', request: post({ refresh_token: 'r'.repeat(257) }), status: 400, message: /refresh_token/ },
        { name: 'a JSON array body', request: rawJson(url, JSON.stringify([refreshToken])), status: 400 },
        { name: 'a JSON string body', request: rawJson(url, JSON.stringify(refreshToken)), status: 400 },
        // `null` is currently read as "no body" (then no token: 401); a 400 would do as well.
        { name: 'a JSON null body', request: rawJson(url, 'null'), status: [400, 401] },
        { name: 'malformed JSON', request: rawJson(url, '{"refresh_token": '), status: 400 },
        { name: 'an empty body labelled JSON', request: rawJson(url, ''), status: 400 },
        { name: 'text/plain', request: post(JSON.stringify({ refresh_token: refreshToken }), { 'content-type': 'text/plain' }), status: 415 },
        { name: 'application/x-www-form-urlencoded', request: post(`refresh_token=${refreshToken}`, { 'content-type': 'application/x-www-form-urlencoded' }), status: 415 },
        { name: 'multipart/form-data', request: { method: 'POST', url, ...multipart({ refresh_token: refreshToken }) }, status: 415 },
        { name: 'an oversized body', request: post({ refresh_token: refreshToken, padding: OVERSIZED }), status: 413 },
        { name: 'an empty token', request: post({ refresh_token: '' }), status: 401, message: invalid },
        { name: 'a garbage token', request: post({ refresh_token: 'garbage' }), status: 401, message: invalid },
        { name: 'three empty parts', request: post({ refresh_token: '..' }), status: 401, message: invalid },
        { name: 'the token truncated', request: post({ refresh_token: refreshToken.slice(0, -1) }), status: 401, message: invalid },
        { name: 'the token padded', request: post({ refresh_token: `${refreshToken}A` }), status: 401, message: invalid },
        { name: 'the token with a trailing space', request: post({ refresh_token: `${refreshToken} ` }), status: 401, message: invalid },
        { name: 'the token with its last character changed', request: post({ refresh_token: lastCharChanged(refreshToken) }), status: 401, message: invalid },
        { name: 'the access token as refresh token', request: post({ refresh_token: access.slice(0, 256) }), status: 401, message: invalid },
        { name: 'X-Auth-Mode: weird, garbage token', request: post({ refresh_token: 'garbage' }, { 'x-auth-mode': 'weird' }), status: [400, 401] },
        { name: 'cookie refresh_token=garbage', request: { method: 'POST', url, headers: { cookie: 'refresh_token=garbage' } }, status: 401, message: invalid },
        { name: 'cookie refresh_token= (empty)', request: { method: 'POST', url, headers: { cookie: 'refresh_token=' } }, status: 401, message: invalid },
        { name: 'cookie with bad percent-encoding', request: { method: 'POST', url, headers: { cookie: 'refresh_token=%zz%E0%A4%A' } }, status: 401, message: invalid },
        { name: 'cookie of 8000 characters', request: { method: 'POST', url, headers: { cookie: `refresh_token=${'c'.repeat(8000)}` } }, status: 401, message: invalid },
        { name: 'cookie with the token changed', request: { method: 'POST', url, headers: { cookie: `refresh_token=${lastCharChanged(refreshToken)}` } }, status: 401, message: invalid },
        { name: 'a cookie header of separators only', request: { method: 'POST', url, headers: { cookie: ';;;=;==; refresh_token' } }, status: 401, message: invalid },
      ]
      for (const c of cases) {
        const response = await check(t, app, c)
        t.notMatch(response.body, /access_token|refresh_token"/, `${c.name}: no token issued`)
      }
    })

    t.test('POST /auth/logout', async (t) => {
      const url = '/auth/logout'
      const post = (payload: unknown, headers: Record<string, string> = {}): InjectOptions =>
        ({ method: 'POST', url, headers, payload: payload as InjectOptions['payload'] })
      const cases: Case[] = [
        { name: 'refresh_token is a number', request: post({ refresh_token: 42 }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is an array', request: post({ refresh_token: [refreshToken] }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is an object', request: post({ refresh_token: {} }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is null', request: post({ refresh_token: null }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token is a boolean', request: post({ refresh_token: false }), status: 400, message: /refresh_token/ },
        { name: 'refresh_token longer than 256', request: post({ refresh_token: 'r'.repeat(257) }), status: 400, message: /refresh_token/ },
        { name: 'a JSON array body', request: rawJson(url, '[]'), status: 400 },
        { name: 'a JSON string body', request: rawJson(url, JSON.stringify(refreshToken)), status: 400 },
        { name: 'malformed JSON', request: rawJson(url, '{refresh_token}'), status: 400 },
        { name: 'an empty body labelled JSON', request: rawJson(url, ''), status: 400 },
        { name: 'text/plain', request: post('logout', { 'content-type': 'text/plain' }), status: 415 },
        { name: 'application/x-www-form-urlencoded', request: post(`refresh_token=${refreshToken}`, { 'content-type': 'application/x-www-form-urlencoded' }), status: 415 },
        { name: 'multipart/form-data', request: { method: 'POST', url, ...multipart({ refresh_token: refreshToken }) }, status: 415 },
        { name: 'an oversized body', request: post({ refresh_token: refreshToken, padding: OVERSIZED }), status: 413 },
      ]
      for (const c of cases) await check(t, app, c)

      // Logout never says whether a token was valid: garbage of the right type is a plain 204.
      const silent: Array<[string, InjectOptions]> = [
        ['a garbage refresh token', post({ refresh_token: 'garbage' })],
        ['the refresh token with its last character changed', post({ refresh_token: lastCharChanged(refreshToken) })],
        ['the refresh token truncated', post({ refresh_token: refreshToken.slice(0, -1) })],
        ['a garbage Bearer token', { method: 'POST', url, headers: bearer('garbage') }],
        ['the access token truncated', { method: 'POST', url, headers: bearer(access.slice(0, -1)) }],
        ['the access token padded', { method: 'POST', url, headers: bearer(`${access}A`) }],
        ['a Bearer header of 20000 characters', { method: 'POST', url, headers: bearer('b'.repeat(20_000)) }],
        ['bogus cookies', { method: 'POST', url, headers: { cookie: 'access_token=garbage; refresh_token=%zz' } }],
        ['X-Auth-Mode: weird', { method: 'POST', url, headers: { 'x-auth-mode': 'weird' } }],
      ]
      for (const [name, request] of silent) {
        const response = await app.inject(request)
        t.equal(response.statusCode, 204, `${name}: 204`)
        t.equal(response.body, '', `${name}: no body`)
      }

      // `null` is currently read as "no body" (a logout without tokens: 204); a 400 would do as well.
      const nullBody = await app.inject(rawJson(url, 'null'))
      if (nullBody.statusCode === 204) t.equal(nullBody.body, '', 'a JSON null body: 204 with no body')
      else assertClientError(t, 'a JSON null body', nullBody, 400)
    })

    for (const route of ['/api/profile', '/api/admin']) {
      t.test(`GET ${route}`, async (t) => {
        const get = (headers: Record<string, string>, extra: Partial<InjectOptions> = {}): InjectOptions =>
          ({ method: 'GET', url: route, headers, ...extra })
        const required = /Authentication required/
        const invalid = /access token is invalid/
        const payload = decodePayload(access)
        const cases: Case[] = [
          { name: 'no token', request: get({}), status: 401, message: required },
          { name: 'Authorization: Bearer (no token)', request: get({ authorization: 'Bearer' }), status: 401, message: invalid },
          { name: 'Authorization: Bearer + space', request: get({ authorization: 'Bearer ' }), status: 401, message: invalid },
          { name: 'Authorization: Basic', request: get({ authorization: `Basic ${Buffer.from(`${alice.username}:${alice.password}`).toString('base64')}` }), status: 401, message: required },
          { name: 'a garbage token', request: get(bearer('garbage')), status: 401, message: invalid },
          { name: 'three empty parts', request: get(bearer('..')), status: 401, message: invalid },
          { name: 'a.b.c', request: get(bearer('a.b.c')), status: 401, message: invalid },
          { name: 'the token truncated by one character', request: get(bearer(access.slice(0, -1))), status: 401, message: invalid },
          { name: 'the token without its signature', request: get(bearer(access.split('.').slice(0, 2).join('.'))), status: 401, message: invalid },
          { name: 'the token without its signature, trailing dot kept', request: get(bearer(`${access.split('.').slice(0, 2).join('.')}.`)), status: 401, message: invalid },
          { name: 'the token padded with a character', request: get(bearer(`${access}A`)), status: 401, message: invalid },
          { name: 'the token padded with =', request: get(bearer(`${access}==`)), status: 401, message: invalid },
          { name: 'the token with a fourth part', request: get(bearer(`${access}.e30`)), status: 401, message: invalid },
          { name: 'the token with its last character changed', request: get(bearer(lastCharChanged(access))), status: 401, message: invalid },
          { name: 'the token twice', request: get({ authorization: `Bearer ${access} ${access}` }), status: 401, message: invalid },
          { name: 'the token with its payload changed to admin', request: get(bearer([access.split('.')[0], Buffer.from(JSON.stringify({ ...payload, roles: ['user', 'admin'] })).toString('base64url'), access.split('.')[2]].join('.'))), status: 401, message: invalid },
          { name: 'alg none', request: get(bearer(`${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${access.split('.')[1]}.`)), status: 401, message: invalid },
          { name: 'the same claims signed with another key', request: get(bearer(signJwt(payload, `${TEST_SECRET}-but-not-ours`))), status: 401, message: invalid },
          { name: 'the refresh token as access token', request: get(bearer(refreshToken)), status: 401, message: invalid },
          { name: 'a token of 5000 characters', request: get(bearer('t'.repeat(5000))), status: 401, message: invalid },
          { name: 'cookie access_token=garbage', request: get({ cookie: 'access_token=garbage' }), status: 401, message: invalid },
          { name: 'cookie access_token= (empty)', request: get({ cookie: 'access_token=' }), status: 401, message: invalid },
          { name: 'cookie with bad percent-encoding', request: get({ cookie: 'access_token=%E0%A4%A' }), status: 401, message: invalid },
          { name: 'cookie with the token truncated', request: get({ cookie: `access_token=${access.slice(0, -1)}` }), status: 401, message: invalid },
          { name: 'a cookie header of separators only', request: get({ cookie: ';;;=;==; access_token' }), status: 401, message: required },
          { name: 'garbage Bearer beside a valid cookie', request: get({ ...bearer('garbage'), cookie: `access_token=${access}` }), status: 401, message: invalid },
          { name: 'X-Auth-Mode: weird without a token', request: get({ 'x-auth-mode': 'weird' }), status: 401, message: required },
          // Bodies of GET requests are not read: no token is still the answer.
          { name: 'malformed JSON body', request: get(JSON_TYPE, { payload: '{' }), status: 401, message: required },
          { name: 'an oversized body', request: get(JSON_TYPE, { payload: JSON.stringify({ padding: OVERSIZED }) }), status: 401, message: required },
        ]
        for (const c of cases) {
          const response = await check(t, app, c)
          t.match(response.headers['www-authenticate'], /^Bearer\b/, `${c.name}: a Bearer challenge`)
          t.notMatch(response.body, alice.username, `${c.name}: nothing of the user`)
        }
      })
    }

    t.test('unknown routes and methods: 404 JSON', async (t) => {
      const cases: Case[] = [
        { name: 'GET /', request: { method: 'GET', url: '/' }, status: 404 },
        { name: 'GET /nope', request: { method: 'GET', url: '/nope?x=1' }, status: 404 },
        { name: 'GET /auth', request: { method: 'GET', url: '/auth' }, status: 404 },
        { name: 'GET /auth/login', request: { method: 'GET', url: '/auth/login' }, status: 404 },
        { name: 'DELETE /auth/login', request: { method: 'DELETE', url: '/auth/login' }, status: 404 },
        { name: 'POST /auth/register', request: { method: 'POST', url: '/auth/register', payload: { username: 'x', password: 'y' } }, status: 404 },
        { name: 'POST /auth/nope as text/plain', request: { method: 'POST', url: '/auth/nope', headers: { 'content-type': 'text/plain' }, payload: 'x' }, status: 404 },
        { name: 'POST /api/profile', request: { method: 'POST', url: '/api/profile', payload: {} }, status: 404 },
        { name: 'PUT /api/admin', request: { method: 'PUT', url: '/api/admin', headers: bearer(access) }, status: 404 },
        { name: 'GET /api/users', request: { method: 'GET', url: '/api/users', headers: bearer(access) }, status: 404 },
        { name: 'GET /api/profile/extra', request: { method: 'GET', url: '/api/profile/extra' }, status: 404 },
        { name: 'a path with bad percent-encoding', request: { method: 'GET', url: '/api/%zz' }, status: 400 },
      ]
      for (const c of cases) {
        const response = await check(t, app, c)
        if (response.statusCode === 404) t.equal(response.json().error, 'Not Found', `${c.name}: Not Found`)
      }
    })

    t.test('after all that, the real users still log in and their sessions still work', async (t) => {
      t.equal((await profile(app, bearer(access))).statusCode, 200, 'the first access token was not revoked by any garbage')
      const rotated = await refresh(app, refreshToken)
      t.equal(rotated.statusCode, 200, 'nor was its refresh token (forged look-alikes revoke nothing)')

      const response = await login(app, alice.username, alice.password)
      t.equal(response.statusCode, 200, 'alice logs in')
      const fresh = response.json()
      t.equal(fresh.token_type, 'Bearer')
      const me = await profile(app, bearer(fresh.access_token))
      t.equal(me.statusCode, 200, 'and reads her profile')
      t.equal(me.json().username, alice.username)
      const root = await loginTokens(app, USERS.root)
      t.equal((await app.inject({ url: '/api/admin', headers: bearer(root.access_token) })).statusCode, 200, 'root reaches the admin route')
      t.equal((await app.inject({ url: '/ready' })).statusCode, 200, 'the store still answers')
    })
  })
}
