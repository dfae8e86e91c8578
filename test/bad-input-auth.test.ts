/** Bad input on /auth/*: every answer a 4xx JSON error (or logout's silent 204), never a 500. */
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { STORE_KINDS, USERS } from './helpers/app.js'
import { OVERSIZED, assertClientError, check, charChanged, multipart, rawJson, type Case, badInputApp } from './helpers/bad-input.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'
import { stopTestRedis } from './helpers/redis.js'

t.teardown(() => stopTestRedis())

for (const store of STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    const { app, alice, access, refreshToken } = await badInputApp(t, store)

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
        { name: 'the token with a character changed', request: post({ refresh_token: charChanged(refreshToken) }), status: 401, message: invalid },
        { name: 'the access token as refresh token', request: post({ refresh_token: access.slice(0, 256) }), status: 401, message: invalid },
        { name: 'X-Auth-Mode: weird, garbage token', request: post({ refresh_token: 'garbage' }, { 'x-auth-mode': 'weird' }), status: [400, 401] },
        { name: 'cookie refresh_token=garbage', request: { method: 'POST', url, headers: { cookie: 'refresh_token=garbage' } }, status: 401, message: invalid },
        { name: 'cookie refresh_token= (empty)', request: { method: 'POST', url, headers: { cookie: 'refresh_token=' } }, status: 401, message: invalid },
        { name: 'cookie with bad percent-encoding', request: { method: 'POST', url, headers: { cookie: 'refresh_token=%zz%E0%A4%A' } }, status: 401, message: invalid },
        { name: 'cookie of 8000 characters', request: { method: 'POST', url, headers: { cookie: `refresh_token=${'c'.repeat(8000)}` } }, status: 401, message: invalid },
        { name: 'cookie with the token changed', request: { method: 'POST', url, headers: { cookie: `refresh_token=${charChanged(refreshToken)}` } }, status: 401, message: invalid },
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
        ['the refresh token with a character changed', post({ refresh_token: charChanged(refreshToken) })],
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
