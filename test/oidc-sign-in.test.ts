import t from 'tap'
import { USERS } from './helpers/app.js'
import { bearer, loginTokens, profile, refresh, setCookies } from './helpers/http.js'
import { API, callbackOf, signIn, start, withSignIn } from './helpers/sign-in.js'
import { externalUserId, userIdFor } from '../src/ids.js'

// Signing in through a provider in a browser (the authorization code flow with PKCE), against a real
// OpenID provider; the browser's part is played by the provider helper (its login and consent pages)
// and by inject (our routes), with the cookies a browser would carry. test/oidc-browser.test.ts drives
// the same flow in Chromium.

for (const store of ['memory', 'redis'] as const) {
  t.test(`${store}: browser sign-in through Auth0-like provider: our own session in cookie mode, linked by (issuer, sub)`, async (t) => {
    // Strict rotation, to show reuse detection at work on these sessions too (the grace window is tested elsewhere).
    const { app, providers, lines } = await withSignIn(t, store, { env: { REFRESH_REUSE_GRACE: '0' } })
    const { started, back, callback } = await signIn(app, providers.auth0, 'auth0', 'admin', '/docs')

    const authorization = new URL(started.location)
    t.equal(authorization.origin, new URL(providers.auth0.issuer).origin, '/start sends the browser to the provider')
    t.match(Object.fromEntries(authorization.searchParams), {
      response_type: 'code',
      client_id: 'web',
      redirect_uri: callbackOf('auth0'),
      code_challenge_method: 'S256',
      scope: /\bopenid\b/,
      state: /^[A-Za-z0-9_-]{40,}$/,
      nonce: /^[A-Za-z0-9_-]{40,}$/,
      code_challenge: /^[A-Za-z0-9_-]{43}$/,
    })
    t.equal(started.response.headers['cache-control'], 'no-store')
    t.match(started.state, { value: authorization.searchParams.get('state'), attributes: { httpOnly: true, secure: true, sameSite: 'Lax', path: '/auth/oidc/auth0/callback', maxAge: 600 } }, 'the state cookie binds the sign-in to this browser')
    t.equal(back.origin + back.pathname, callbackOf('auth0'), 'the provider sends the browser back to our callback')

    t.equal(callback.statusCode, 302, callback.body)
    t.equal(callback.headers.location, `${API}/docs`, 'to return_to')
    const cookies = setCookies(callback)
    t.match(cookies.get('access_token')?.attributes, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/' }, 'the cookies of a cookie-mode login')
    t.match(cookies.get('refresh_token')?.attributes, { httpOnly: true, secure: true, sameSite: 'Strict', path: '/auth' })
    t.equal(cookies.get('oidc_state')?.value, '', 'the state cookie is cleared')
    const id = externalUserId(providers.auth0.issuer, 'admin')
    const me = await profile(app, bearer(cookies.get('access_token')?.value ?? ''))
    t.same(me.json(), { id, username: 'admin', email: 'admin@example.test', roles: ['user', 'admin'] }, 'the account: the provider\'s profile, defaultRoles plus its roles claim')
    t.equal((await app.inject({ url: '/api/admin', cookies: { access_token: cookies.get('access_token')?.value ?? '' } })).statusCode, 200, 'the access cookie opens /api/admin')

    // From here it is the existing machinery: rotation with reuse detection, sessions, logout.
    const refreshToken = cookies.get('refresh_token')?.value ?? ''
    const rotated = await refresh(app, refreshToken)
    t.equal(rotated.statusCode, 200)
    const sessions = await app.inject({ url: '/auth/sessions', headers: bearer(rotated.json().access_token) })
    t.equal(sessions.json().sessions.length, 1, 'one session, listed like any other')
    t.equal((await refresh(app, refreshToken)).statusCode, 401, 'the spent token is refused (strict: no grace in tests)')
    t.equal((await refresh(app, rotated.json().refresh_token)).statusCode, 401, 'reuse revoked the whole session')

    const succeeded = lines.map(line => JSON.parse(line)).filter(line => line.event === 'oidc_login_succeeded')
    t.match(succeeded, [{ provider: 'auth0', userId: id, sessionId: String }], 'audited')
    t.notOk(lines.some(line => line.includes(back.searchParams.get('code') ?? '-') || line.includes(back.searchParams.get('state') ?? '-')), 'neither the code nor the state reaches the log')
    t.ok(lines.some(line => line.includes('"url":"/auth/oidc/auth0/callback?code=[redacted]')), 'the callback\'s line has them redacted')
  })
}
t.test('the callback answers once: a replay, another browser, a tampered or missing state are 400 and start no session', async (t) => {
  const { app, providers, lines } = await withSignIn(t)
  const { back, callback, started } = await signIn(app, providers.auth0, 'auth0', 'someone')
  t.equal(callback.statusCode, 302)
  const replay = await app.inject({ url: `${back.pathname}${back.search}`, cookies: { oidc_state: started.state?.value ?? '' } })
  t.equal(replay.statusCode, 400)
  t.match(replay.json(), { code: 'INVALID_SIGN_IN_STATE' })
  t.notOk(setCookies(replay).has('access_token'), 'no session')

  // Someone hands the victim the callback URL of a sign-in they started: the victim's browser has no state cookie.
  const attacker = await start(app, 'auth0')
  const attackerBack = await providers.auth0.signIn(attacker.location, 'attacker')
  const handedOver = await app.inject({ url: `${attackerBack.pathname}${attackerBack.search}` })
  t.equal(handedOver.statusCode, 400, 'no state cookie')
  t.match(handedOver.json(), { code: 'INVALID_SIGN_IN_STATE' })
  const victim = await start(app, 'auth0')
  const elsewhere = await app.inject({ url: `${attackerBack.pathname}${attackerBack.search}`, cookies: { oidc_state: victim.state?.value ?? '' } })
  t.equal(elsewhere.statusCode, 400, 'the victim\'s own state cookie, of another sign-in')
  const late = await app.inject({ url: `${attackerBack.pathname}${attackerBack.search}`, cookies: { oidc_state: attacker.state?.value ?? '' } })
  t.equal(late.statusCode, 400, 'and the attempt, tried once, is spent')

  const fresh = await start(app, 'auth0')
  const freshBack = await providers.auth0.signIn(fresh.location, 'someone')
  const tampered = new URL(freshBack)
  tampered.searchParams.set('state', `${tampered.searchParams.get('state') ?? ''}x`)
  const tamperedAnswer = await app.inject({ url: `${tampered.pathname}${tampered.search}`, cookies: { oidc_state: `${fresh.state?.value ?? ''}x` } })
  t.equal(tamperedAnswer.statusCode, 400, 'a state that was never issued')
  const noState = await app.inject({ url: '/auth/oidc/auth0/callback?code=abc', cookies: { oidc_state: 'abc' } })
  t.equal(noState.statusCode, 400)
  t.match(noState.json(), { code: 'INVALID_SIGN_IN_STATE' })
  for (const answer of [handedOver, elsewhere, late, tamperedAnswer, noState]) t.notOk(setCookies(answer).has('access_token'))
  const failed = lines.map(line => JSON.parse(line)).filter(line => line.event === 'oidc_login_failed')
  t.ok(failed.length >= 5 && failed.every(line => line.provider === 'auth0' && typeof line.reason === 'string'), 'each failure audited with its reason')
})

t.test('an error from the provider and a code it refuses: 4xx JSON, no session', async (t) => {
  const { app, providers, lines } = await withSignIn(t)
  const denied = await start(app, 'auth0')
  const deniedBack = await providers.auth0.signIn(denied.location, 'someone', { deny: true })
  t.equal(deniedBack.searchParams.get('error'), 'access_denied', 'the user cancelled at the provider')
  const answer = await app.inject({ url: `${deniedBack.pathname}${deniedBack.search}`, cookies: { oidc_state: denied.state?.value ?? '' } })
  t.equal(answer.statusCode, 400)
  t.match(answer.json(), { code: 'PROVIDER_ERROR', message: /access_denied/ })

  const forged = await start(app, 'auth0')
  const forgedBack = await providers.auth0.signIn(forged.location, 'someone')
  forgedBack.searchParams.set('code', 'not-a-code-the-provider-issued')
  const refused = await app.inject({ url: `${forgedBack.pathname}${forgedBack.search}`, cookies: { oidc_state: forged.state?.value ?? '' } })
  t.equal(refused.statusCode, 401)
  t.match(refused.json(), { code: 'SIGN_IN_FAILED' })
  t.notOk(setCookies(refused).has('access_token'))
  const reasons = lines.map(line => JSON.parse(line)).filter(line => line.event === 'oidc_login_failed').map(line => line.reason)
  t.same(reasons, ['provider error: access_denied', 'exchange refused: invalid_grant'])
})

t.test('linking is by (issuer, sub): a provider account named like a local user is another user', async (t) => {
  const { app, providers } = await withSignIn(t)
  // The provider's "alice" has preferred_username alice, like our local alice.
  const { callback } = await signIn(app, providers.google, 'google', USERS.alice.username)
  const external = await profile(app, bearer(setCookies(callback).get('access_token')?.value ?? ''))
  t.equal(external.json().id, externalUserId(providers.google.issuer, USERS.alice.username))
  t.not(external.json().id, userIdFor(USERS.alice.username))
  t.same(external.json().roles, ['user'], 'google: defaultRoles, no roles claim')
  const local = await loginTokens(app, USERS.alice)
  t.same((await profile(app, bearer(local.access_token))).json(), { id: userIdFor(USERS.alice.username), username: 'alice', email: USERS.alice.email, roles: ['user'] }, 'the local alice is untouched')
  const again = await signIn(app, providers.google, 'google', USERS.alice.username)
  t.equal((await profile(app, bearer(setCookies(again.callback).get('access_token')?.value ?? ''))).json().id, external.json().id, 'a second sign-in finds the same account')
  const password = await app.inject({ method: 'POST', url: '/auth/password', headers: bearer(setCookies(again.callback).get('access_token')?.value ?? ''), payload: { current_password: 'x', new_password: 'a long enough new password' } })
  t.equal(password.statusCode, 403, 'an external account has no password to change')
  t.match(password.json(), { code: 'NO_PASSWORD' })
})

t.test('return_to: this API\'s origin or OIDC_RETURN_ORIGINS, else 400 (no open redirect)', async (t) => {
  const { app, providers } = await withSignIn(t)
  for (const evil of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'https://127.0.0.1.evil.example/', 'javascript:alert(1)', 'http://127.0.0.1:8080/', 'https://user@app.example.test/', 'https://app.example.test.evil.example/', 'http://app.example.test/', '']) {
    const { response } = await start(app, 'auth0', evil)
    t.equal(response.statusCode, 400, `refused: ${JSON.stringify(evil)}`)
    t.match(response.json(), { code: 'INVALID_RETURN_TO' })
    t.notOk(setCookies(response).has('oidc_state'), 'nothing started')
  }
  const spa = await signIn(app, providers.auth0, 'auth0', 'someone', 'https://app.example.test/signed-in?tab=1')
  t.equal(spa.callback.headers.location, 'https://app.example.test/signed-in?tab=1', 'an origin of OIDC_RETURN_ORIGINS')
  const home = await signIn(app, providers.auth0, 'auth0', 'someone')
  t.equal(home.callback.headers.location, `${API}/`, 'missing: the API\'s own /')
})
