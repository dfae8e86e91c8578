/** Bad input on the protected and unknown routes: 401/404/400 JSON, never a 500. */
import type { InjectOptions } from 'fastify'
import t from 'tap'
import { STORE_KINDS, TEST_SECRET } from './helpers/app.js'
import { JSON_TYPE, OVERSIZED, check, decodePayload, charChanged, signJwt, type Case, badInputApp } from './helpers/bad-input.js'
import { bearer, profile, refresh } from './helpers/http.js'
import { stopTestRedis } from './helpers/redis.js'

t.teardown(() => stopTestRedis())

for (const store of STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    const { app, alice, access, refreshToken } = await badInputApp(t, store)

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
          { name: 'the token with a character changed', request: get(bearer(charChanged(access))), status: 401, message: invalid },
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
    t.test('after all that, the first session still works', async (t) => {
      t.equal((await profile(app, bearer(access))).statusCode, 200, 'no garbage revoked the access token')
      t.equal((await refresh(app, refreshToken)).statusCode, 200, 'nor its refresh token')
    })
  })
}
