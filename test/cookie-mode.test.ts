import t from 'tap'
import { STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh, setCookies } from './helpers/http.js'

const COOKIE_MODE = { 'x-auth-mode': 'cookie' }

for (const store of STORE_KINDS) {
  t.test(`${store} store`, async (t) => {
    t.test('login in cookie mode sets both HttpOnly cookies and keeps the refresh token out of the body', async (t) => {
      const { app, config } = await buildTestApp(t, store)
      const response = await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE)
      t.equal(response.statusCode, 200)
      const body = response.json()
      t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type'])
      const cookies = setCookies(response)
      t.same([...cookies.keys()].sort(), ['access_token', 'refresh_token'])
      t.equal(cookies.get('access_token')?.value, body.access_token)
      t.same(cookies.get('access_token')?.attributes, { maxAge: config.accessTokenTtl, path: '/', httpOnly: true, secure: true, sameSite: 'Strict' })
      const refreshCookie = cookies.get('refresh_token')
      t.same(refreshCookie?.attributes, { maxAge: config.refreshTokenTtl, path: '/auth', httpOnly: true, secure: true, sameSite: 'Strict' })
      t.match(refreshCookie?.value, /^[\w-]{22}\.[\w-]{22}\.[\w-]{43}$/)
    })

    t.test('X-Auth-Mode: body (or none) is the default body transport', async (t) => {
      const { app } = await buildTestApp(t, store)
      const response = await login(app, USERS.alice.username, USERS.alice.password, { 'x-auth-mode': 'body' })
      t.equal(response.statusCode, 200)
      t.type(response.json().refresh_token, 'string')
      t.equal(response.headers['set-cookie'], undefined)
    })

    t.test('protected routes accept the access cookie', async (t) => {
      const { app } = await buildTestApp(t, store)
      const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const response = await profile(app, { cookie: `access_token=${cookies.get('access_token')?.value}` })
      t.equal(response.statusCode, 200)
      t.equal(response.json().username, 'alice')
      const bogus = await profile(app, { cookie: 'access_token=nonsense' })
      t.equal(bogus.statusCode, 401)
      t.match(bogus.headers['www-authenticate'], /error="invalid_token"/)
    })

    t.test('the Bearer header wins over the cookie', async (t) => {
      const { app } = await buildTestApp(t, store)
      const alice = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const root = await loginTokens(app, USERS.root)
      const response = await profile(app, { ...bearer(root.access_token), cookie: `access_token=${alice.get('access_token')?.value}` })
      t.equal(response.json().username, 'root')
    })

    t.test('refresh from the cookie answers in cookies, rotating both', async (t) => {
      const { app, config } = await buildTestApp(t, store)
      const first = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const oldRefresh = first.get('refresh_token')?.value
      const response = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(oldRefresh) } })
      t.equal(response.statusCode, 200)
      const body = response.json()
      t.same(Object.keys(body).sort(), ['access_token', 'expires_in', 'token_type'], 'no refresh token in the body')
      const rotated = setCookies(response)
      t.not(rotated.get('refresh_token')?.value, oldRefresh)
      t.equal(rotated.get('access_token')?.value, body.access_token)
      t.equal(rotated.get('refresh_token')?.attributes.path, '/auth')
      const maxAge = Number(rotated.get('refresh_token')?.attributes.maxAge)
      t.ok(maxAge <= config.refreshTokenTtl && maxAge >= config.refreshTokenTtl - 5, 'Max-Age is what is left of the session')
      t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(rotated.get('refresh_token')?.value) } })).statusCode, 200)
    })

    t.test('refresh from the body answers in the body, even when a cookie is also present', async (t) => {
      const { app } = await buildTestApp(t, store)
      const viaBody = await loginTokens(app, USERS.alice)
      const viaCookie = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const response = await app.inject({
        method: 'POST',
        url: '/auth/refresh',
        payload: { refresh_token: viaBody.refresh_token },
        cookies: { refresh_token: String(viaCookie.get('refresh_token')?.value) },
      })
      t.equal(response.statusCode, 200)
      t.type(response.json().refresh_token, 'string')
      t.equal(response.headers['set-cookie'], undefined)
      t.equal((await refresh(app, viaBody.refresh_token)).json().refresh_token, response.json().refresh_token, 'the body token was the one spent: presented again, it gets the same successor')
      const cookieRefresh = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(viaCookie.get('refresh_token')?.value) } })
      t.equal(cookieRefresh.statusCode, 200, 'the cookie token was not spent')
    })

    t.test('logout by cookies revokes the session and clears both cookies with their Paths', async (t) => {
      const { app } = await buildTestApp(t, store)
      const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const access = String(cookies.get('access_token')?.value)
      const refreshToken = String(cookies.get('refresh_token')?.value)
      const response = await app.inject({ method: 'POST', url: '/auth/logout', cookies: { access_token: access, refresh_token: refreshToken } })
      t.equal(response.statusCode, 204)
      const cleared = setCookies(response)
      for (const [name, path] of [['access_token', '/'], ['refresh_token', '/auth']] as const) {
        const cookie = cleared.get(name)
        t.equal(cookie?.value, '', `${name} emptied`)
        t.equal(cookie?.attributes.path, path, `${name} cleared on its own Path`)
        t.equal(cookie?.attributes.maxAge, 0)
        t.equal(cookie?.attributes.httpOnly, true)
        t.equal(cookie?.attributes.secure, true)
        t.equal(cookie?.attributes.sameSite, 'Strict')
        t.same(cookie?.attributes.expires, new Date(0))
      }
      t.equal((await profile(app, { cookie: `access_token=${access}` })).statusCode, 401)
      t.equal((await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: refreshToken } })).statusCode, 401)
    })

    t.test('logout by the refresh cookie alone (expired access token case) ends the session', async (t) => {
      const { app } = await buildTestApp(t, store)
      const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, COOKIE_MODE))
      const response = await app.inject({ method: 'POST', url: '/auth/logout', cookies: { refresh_token: String(cookies.get('refresh_token')?.value) } })
      t.equal(response.statusCode, 204)
      t.equal((await profile(app, { cookie: `access_token=${cookies.get('access_token')?.value}` })).statusCode, 401, 'the session access token is denied')
    })
  })
}
