import t from 'tap'
import { STORE_KINDS, USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh, setCookies } from './helpers/http.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

for (const store of STORE_KINDS) {
  t.test(`${store} store: access tokens expire; a session lives REFRESH_TOKEN_TTL from login, rotation or not`, async (t) => {
    const { app } = await buildTestApp(t, store, { ACCESS_TOKEN_TTL: '1', REFRESH_TOKEN_TTL: '3' })
    const first = await loginTokens(app, USERS.alice)
    const loggedIn = Date.now() // no earlier than the session's start: its expiry is at most this + 3 s
    const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, { 'x-auth-mode': 'cookie' }))
    t.equal(cookies.get('refresh_token')?.attributes.maxAge, 3, 'the refresh cookie lives as long as the session')

    await sleep(2100)
    const expired = await profile(app, bearer(first.access_token))
    t.equal(expired.statusCode, 401, 'the access token has expired')
    t.same(expired.json(), { statusCode: 401, error: 'Unauthorized', message: 'The access token expired', code: 'ACCESS_TOKEN_EXPIRED' }, 'ACCESS_TOKEN_EXPIRED: the client should refresh')
    t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="The access token expired"')

    const second = await refresh(app, first.refresh_token)
    t.equal(second.statusCode, 200, 'the session still refreshes within its lifetime')
    const viaCookie = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(cookies.get('refresh_token')?.value) } })
    const left = Number(setCookies(viaCookie).get('refresh_token')?.attributes.maxAge)
    t.ok(left >= 0 && left <= 1, `the rotated cookie keeps the session's deadline (Max-Age ${left})`)

    await sleep(Math.max(0, loggedIn + 3200 - Date.now()))
    t.equal((await refresh(app, second.json().refresh_token)).statusCode, 401, 'past the session lifetime a freshly rotated token fails too')
  })
}
