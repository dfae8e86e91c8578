// Lifetimes over HTTP, in real seconds, on Redis (its TTLs keep real time; a Cluster runs the same Lua).
// The embedded store proves the same bounds on its own clock, without waiting: test/session-clock.test.ts.
import t from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, login, loginTokens, profile, refresh, setCookies } from './helpers/http.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

for (const store of ['redis'] as const) {
  t.test(`${store} store: access tokens expire; a session ends REFRESH_TOKEN_TTL after its last use, SESSION_MAX_AGE after its login at most`, async (t) => {
    const { app } = await buildTestApp(t, store, { ACCESS_TOKEN_TTL: '1', REFRESH_TOKEN_TTL: '2', SESSION_MAX_AGE: '4' })
    const first = await loginTokens(app, USERS.alice)
    const loggedIn = Date.now() // no earlier than the session's start: its bound is at most this + 4 s
    const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, { 'x-auth-mode': 'cookie' }))
    t.equal(cookies.get('refresh_token')?.attributes.maxAge, 2, 'the refresh cookie lives as long as the session may stay unused')
    const idle = await loginTokens(app, USERS.alice)

    await sleep(1500)
    const expired = await profile(app, bearer(first.access_token))
    t.equal(expired.statusCode, 401, 'the access token has expired')
    t.same(expired.json(), { statusCode: 401, error: 'Unauthorized', message: 'The access token expired', code: 'ACCESS_TOKEN_EXPIRED' }, 'ACCESS_TOKEN_EXPIRED: the client should refresh')
    t.equal(expired.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="The access token expired"')
    const second = await refresh(app, first.refresh_token)
    t.equal(second.statusCode, 200, 'refreshed within the idle bound')

    await sleep(1500) // 3 s from login: the login's 2 s are past, the refresh's are not
    const third = await refresh(app, second.json().refresh_token)
    t.equal(third.statusCode, 200, 'a refresh extended the session')
    t.equal((await refresh(app, idle.refresh_token)).statusCode, 401, 'a session left unused for its idle bound has ended')
    const viaCookie = await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(cookies.get('refresh_token')?.value) } })
    t.equal(viaCookie.statusCode, 401, 'the cookie session too, unused since its login')

    await sleep(800)
    const last = await refresh(app, third.json().refresh_token)
    t.equal(last.statusCode, 200, 'a chain of refreshes outlives any one idle bound')

    await sleep(Math.max(0, loggedIn + 4200 - Date.now()))
    t.equal((await refresh(app, last.json().refresh_token)).statusCode, 401, 'past SESSION_MAX_AGE a freshly rotated token fails too')
  })

  t.test(`${store} store: the rotated refresh cookie lives what is left of the nearer bound`, async (t) => {
    const { app } = await buildTestApp(t, store, { ACCESS_TOKEN_TTL: '1', REFRESH_TOKEN_TTL: '3', SESSION_MAX_AGE: '4' })
    const cookies = setCookies(await login(app, USERS.alice.username, USERS.alice.password, { 'x-auth-mode': 'cookie' }))
    const loggedIn = Date.now()
    const early = setCookies(await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(cookies.get('refresh_token')?.value) } }))
    const earlyMaxAge = Number(early.get('refresh_token')?.attributes.maxAge)
    // Whole seconds left, rounded down (the cookie never outlives the session): 2.99 s is 2.
    t.ok(earlyMaxAge >= 2 && earlyMaxAge <= 3, `early on: the idle bound (Max-Age ${earlyMaxAge})`)
    await sleep(Math.max(0, loggedIn + 2100 - Date.now()))
    const late = setCookies(await app.inject({ method: 'POST', url: '/auth/refresh', cookies: { refresh_token: String(early.get('refresh_token')?.value) } }))
    const maxAge = Number(late.get('refresh_token')?.attributes.maxAge)
    t.ok(maxAge >= 1 && maxAge <= 2, `later: what is left of the absolute bound (Max-Age ${maxAge})`)
  })
}

t.test('an access token never outlives its session: near SESSION_MAX_AGE it is issued for what is left', async (t) => {
  const { app } = await buildTestApp(t, 'redis', { ACCESS_TOKEN_TTL: '3', REFRESH_TOKEN_TTL: '4', SESSION_MAX_AGE: '4' })
  const first = await loginTokens(app, USERS.alice)
  t.equal(first.expires_in, 3, 'at login: ACCESS_TOKEN_TTL')
  await sleep(1100)
  const rotated = await refresh(app, first.refresh_token)
  const body = rotated.json()
  t.ok(body.expires_in <= 2 && body.expires_in >= 1, `1.1 s later the session has under 3 s left: expires_in ${body.expires_in}`)
  const claims = JSON.parse(Buffer.from(String(body.access_token).split('.')[1] ?? '', 'base64url').toString()) as { iat: number, exp: number }
  t.equal(claims.exp - claims.iat, body.expires_in, 'and so does the token itself')
  t.equal((await profile(app, bearer(body.access_token))).statusCode, 200)
})
