import t from 'tap'
import { hmacKeyId } from '../src/tokens/key-ring.js'
import { CORE_STORE_KINDS, TEST_SECRET, USERS, buildTestApp } from './helpers/app.js'
import { charChanged } from './helpers/bad-input.js'
import { bearer, login, loginTokens, profile, refresh } from './helpers/http.js'

function decodeJwt (token: string): { header: Record<string, unknown>, payload: Record<string, unknown> } {
  const [header, payload] = token.split('.').slice(0, 2).map(part => JSON.parse(Buffer.from(part, 'base64url').toString()))
  return { header, payload }
}

for (const store of CORE_STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    t.test('login answers a token pair; the access token has exactly the contract claims', async (t) => {
      const { app, config } = await buildTestApp(t, store)
      const response = await login(app, USERS.alice.username, USERS.alice.password)
      t.equal(response.statusCode, 200)
      t.equal(response.headers['cache-control'], 'no-store')
      t.equal(response.headers['set-cookie'], undefined, 'body mode sets no cookie')
      const body = response.json()
      t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])
      t.equal(body.token_type, 'Bearer')
      t.equal(body.expires_in, config.accessTokenTtl)
      t.match(body.refresh_token, /^[\w-]{22}\.[\w-]{22}\.[\w-]{43}$/, '256-bit secret behind a locator')

      const { header, payload } = decodeJwt(body.access_token)
      t.same(header, { alg: 'HS256', typ: 'at+jwt', kid: hmacKeyId(Buffer.from(TEST_SECRET)) }, 'the key named by its RFC 7638 thumbprint')
      t.same(Object.keys(payload).sort(), ['aud', 'epoch', 'exp', 'iat', 'iss', 'jti', 'roles', 'sid', 'sub'])
      t.match(payload.epoch, /^[\w-]{22}$/, 'the account\'s store epoch')
      t.equal(payload.iss, config.jwt.issuer)
      t.equal(payload.aud, config.jwt.audience)
      t.same(payload.roles, ['user'])
      t.equal((payload.exp as number) - (payload.iat as number), config.accessTokenTtl)
      t.match(payload.jti, /^[\w-]{22}$/)
      t.equal(body.refresh_token.split('.')[1], payload.sid, 'refresh token belongs to the session')
    })

    t.test('unknown user and wrong password get the same 401', async (t) => {
      const { app } = await buildTestApp(t, store)
      const wrongPassword = await login(app, USERS.alice.username, 'not-the-password')
      const unknownUser = await login(app, 'mallory', 'whatever-password')
      t.equal(wrongPassword.statusCode, 401)
      t.equal(unknownUser.statusCode, 401)
      t.same(wrongPassword.json(), unknownUser.json())
      t.same(wrongPassword.json(), { statusCode: 401, error: 'Unauthorized', message: 'Invalid username or password', code: 'INVALID_CREDENTIALS' })
      t.equal(wrongPassword.headers['set-cookie'], undefined)
    })

    t.test('usernames match exactly', async (t) => {
      const { app } = await buildTestApp(t, store)
      t.equal((await login(app, 'Alice', USERS.alice.password)).statusCode, 401)
      t.equal((await login(app, 'alice ', USERS.alice.password)).statusCode, 401)
    })

    t.test('profile answers the user from the store, never the password hash', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const response = await profile(app, bearer(tokens.access_token))
      t.equal(response.statusCode, 200)
      const body = response.json()
      t.same(Object.keys(body).sort(), ['email', 'id', 'roles', 'username'])
      t.match(body, { username: 'alice', email: 'alice@example.com', roles: ['user'] })
      t.equal(body.id, decodeJwt(tokens.access_token).payload.sub)
      t.notMatch(response.body, /argon2/)
    })

    t.test('protected routes without a token: 401 with a bare Bearer challenge', async (t) => {
      const { app } = await buildTestApp(t, store)
      for (const url of ['/api/profile', '/api/admin']) {
        const response = await app.inject({ url })
        t.equal(response.statusCode, 401, url)
        t.equal(response.headers['www-authenticate'], 'Bearer', url)
        t.match(response.json(), { statusCode: 401, error: 'Unauthorized', message: 'Authentication required' })
      }
    })

    t.test('an invalid token: 401 invalid_token, and no fallback to the cookie', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const tampered = charChanged(tokens.access_token)
      for (const headers of [bearer(tampered), bearer('not.a.jwt'), { authorization: 'Bearer' }, { authorization: 'Bearer ' }]) {
        const response = await profile(app, { ...headers, cookie: `access_token=${tokens.access_token}` })
        t.equal(response.statusCode, 401, String(headers.authorization))
        t.match(response.headers['www-authenticate'], /^Bearer error="invalid_token"/)
        t.equal(response.json().message, 'The access token is invalid')
      }
      const basic = await profile(app, { authorization: 'Basic YWxpY2U6eA==', cookie: `access_token=${tokens.access_token}` })
      t.equal(basic.statusCode, 200, 'a non-Bearer Authorization scheme leaves the cookie to decide')
    })

    t.test('admin needs the admin role: 403 insufficient_scope, 200 for admins', async (t) => {
      const { app } = await buildTestApp(t, store)
      const alice = await loginTokens(app, USERS.alice)
      const denied = await app.inject({ url: '/api/admin', headers: bearer(alice.access_token) })
      t.equal(denied.statusCode, 403)
      t.match(denied.headers['www-authenticate'], /^Bearer error="insufficient_scope"/)
      t.match(denied.json(), { statusCode: 403, error: 'Forbidden' })

      const root = await loginTokens(app, USERS.root)
      const allowed = await app.inject({ url: '/api/admin', headers: bearer(root.access_token) })
      t.equal(allowed.statusCode, 200)
      t.match(allowed.json(), { roles: ['user', 'admin'] })
    })

    t.test('refresh spends the token and issues a new pair in the same session', async (t) => {
      const { app } = await buildTestApp(t, store)
      const first = await loginTokens(app, USERS.alice)
      const response = await refresh(app, first.refresh_token)
      t.equal(response.statusCode, 200)
      t.equal(response.headers['cache-control'], 'no-store')
      const second = response.json()
      t.not(second.refresh_token, first.refresh_token)
      t.not(second.access_token, first.access_token)
      t.equal(decodeJwt(second.access_token).payload.sid, decodeJwt(first.access_token).payload.sid)
      t.equal((await profile(app, bearer(second.access_token))).statusCode, 200)
      t.equal((await profile(app, bearer(first.access_token))).statusCode, 200, 'the older access token lives until it expires')

      const third = await refresh(app, second.refresh_token)
      t.equal(third.statusCode, 200, 'the new refresh token works in turn')
    })

    t.test('a spent refresh token presented again once its successor was spent revokes the whole session', async (t) => {
      const { app } = await buildTestApp(t, store)
      const first = await loginTokens(app, USERS.alice)
      const other = await loginTokens(app, USERS.alice)
      const second = (await refresh(app, first.refresh_token)).json()
      const third = (await refresh(app, second.refresh_token)).json()

      const replay = await refresh(app, first.refresh_token)
      t.equal(replay.statusCode, 401)
      t.same(replay.json(), { statusCode: 401, error: 'Unauthorized', message: 'The refresh token is invalid, expired, spent or revoked', code: 'INVALID_REFRESH_TOKEN' })

      t.equal((await refresh(app, third.refresh_token)).statusCode, 401, 'the newest refresh token of the session is dead')
      for (const token of [first.access_token, second.access_token, third.access_token]) {
        const response = await profile(app, bearer(token))
        t.equal(response.statusCode, 401, 'every access token of the session is denied')
        t.equal(response.json().message, 'The access token has been revoked')
      }
      t.equal((await profile(app, bearer(other.access_token))).statusCode, 200, 'other sessions of the user are untouched')
      t.equal((await refresh(app, other.refresh_token)).statusCode, 200)
    })

    t.test('refresh with a missing, malformed or forged token: 401', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const [userId, sessionId] = tokens.refresh_token.split('.')
      const forged = `${userId}.${sessionId}.${'A'.repeat(43)}`
      for (const candidate of ['', 'garbage', forged, tokens.refresh_token.slice(0, -1), `${tokens.refresh_token}x`]) {
        const response = await refresh(app, candidate)
        t.equal(response.statusCode, 401, JSON.stringify(candidate))
      }
      t.equal((await app.inject({ method: 'POST', url: '/auth/refresh' })).statusCode, 401, 'no body and no cookie')
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'a forged token for the session does not revoke it')
    })

    t.test('logout revokes the session and denies the access token; it is idempotent', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const sibling = (await refresh(app, tokens.refresh_token)).json()

      const response = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })
      t.equal(response.statusCode, 204)
      t.equal(response.body, '')
      t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 401, 'the access token is denied')
      t.equal((await profile(app, bearer(sibling.access_token))).statusCode, 401, 'so is every token of the session')
      t.equal((await refresh(app, sibling.refresh_token)).statusCode, 401, 'the session refresh token is revoked')

      const again = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(tokens.access_token) })
      t.equal(again.statusCode, 204, 'logging out twice is fine')
    })

    t.test('logout with only the refresh token ends its session', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const response = await app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: tokens.refresh_token } })
      t.equal(response.statusCode, 204)
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 401)
      t.equal((await profile(app, bearer(tokens.access_token))).statusCode, 401, 'access tokens of the session are denied')
    })

    t.test('logout never tells whether the tokens were valid', async (t) => {
      const { app } = await buildTestApp(t, store)
      const tokens = await loginTokens(app, USERS.alice)
      const [userId, sessionId] = tokens.refresh_token.split('.')
      const attempts = [
        {},
        { headers: bearer('not-a-token') },
        { payload: { refresh_token: 'garbage' } },
        { payload: { refresh_token: `${userId}.${sessionId}.${'B'.repeat(43)}` } },
      ]
      const bodies = new Set<string>()
      for (const attempt of attempts) {
        const response = await app.inject({ method: 'POST', url: '/auth/logout', ...attempt })
        t.equal(response.statusCode, 204)
        bodies.add(response.body)
      }
      t.same([...bodies], [''])
      t.equal((await refresh(app, tokens.refresh_token)).statusCode, 200, 'a forged refresh token revoked nothing')
    })

    t.test('health and readiness', async (t) => {
      const { app } = await buildTestApp(t, store)
      t.same((await app.inject({ url: '/health' })).json(), { status: 'ok' })
      const ready = await app.inject({ url: '/ready' })
      t.equal(ready.statusCode, 200)
      // A cluster is the Redis store too.
      t.same(ready.json(), { status: 'ok', store: store === 'memory' ? 'memory' : 'redis' })
    })
  })
}
