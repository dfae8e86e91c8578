import type { FastifyInstance } from 'fastify'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'
import * as client from 'openid-client'
import t, { type Test } from 'tap'
import { buildTestApp } from './helpers/app.js'
import { bearer, profile, refresh } from './helpers/http.js'
import { API_AUDIENCE, TestOidcProvider, providersFile } from './helpers/oidc-provider.js'
import { externalUserId } from '../src/ids.js'

// A mobile app signs in at the provider itself (its own code flow with PKCE, a custom-scheme redirect)
// and exchanges the ID token it got for one of our sessions: POST /auth/oidc/{name}/token.

async function withExchange (t: Test, env: NodeJS.ProcessEnv = {}) {
  const google = await TestOidcProvider.start('google')
  const entra = await TestOidcProvider.start('entra')
  t.teardown(async () => { await google.stop(); await entra.stop() })
  const file = providersFile([
    { name: 'google', issuer: google.issuer, clientId: 'mobile' },
    { name: 'entra', issuer: entra.issuer, clientId: 'web', clientSecret: 'web-secret', roleMap: { Admin: 'admin' } },
    { name: 'api-only', issuer: 'https://api-only.example.test/', audience: API_AUDIENCE },
  ])
  const lines: string[] = []
  const { app } = await buildTestApp(t, 'redis', { OIDC_PROVIDERS_FILE: file, LOG_LEVEL: 'info', REFRESH_REUSE_GRACE: '0', ...env }, { logStream: { write: (line: string) => { lines.push(line) } } })
  return { app, google, entra, lines }
}

function exchange (app: FastifyInstance, name: string, payload: unknown) {
  return app.inject({ method: 'POST', url: `/auth/oidc/${name}/token`, payload: payload as Record<string, unknown> })
}

/** An ID token as the provider's code flow gives a native app (openid-client, as an app's library would). */
async function realIdToken (provider: TestOidcProvider, login: string): Promise<{ idToken: string, nonce: string }> {
  const config = await client.discovery(new URL(provider.issuer), 'mobile', undefined, client.None())
  const verifier = client.randomPKCECodeVerifier()
  const nonce = client.randomNonce()
  const state = client.randomState()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: 'com.example.app:/callback', scope: 'openid profile email', state, nonce, code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  })
  const back = await provider.signIn(url.href, login)
  const tokens = await client.authorizationCodeGrant(config, back, { pkceCodeVerifier: verifier, expectedNonce: nonce, expectedState: state })
  return { idToken: tokens.id_token ?? '', nonce }
}

t.test('a real ID token from the app\'s own code flow: a body-mode pair of ours, and the account linked by (issuer, sub)', async (t) => {
  const { app, google, lines } = await withExchange(t)
  const { idToken, nonce } = await realIdToken(google, 'mia')
  const answer = await exchange(app, 'google', { id_token: idToken, nonce })
  t.equal(answer.statusCode, 200, answer.body)
  t.equal(answer.headers['cache-control'], 'no-store')
  const pair = answer.json()
  t.match(pair, { access_token: String, refresh_token: String, token_type: 'Bearer', expires_in: Number })
  t.same((await profile(app, bearer(pair.access_token))).json(), { id: externalUserId(google.issuer, 'mia'), username: 'mia', email: 'mia@example.test', roles: ['user'] })
  const rotated = await refresh(app, pair.refresh_token)
  t.equal(rotated.statusCode, 200, 'then rotation as for any session')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(rotated.json().access_token) })).statusCode, 204)
  t.equal((await refresh(app, rotated.json().refresh_token)).statusCode, 401, 'and logout ends it')
  t.match(lines.map(line => JSON.parse(line)).filter(line => line.event === 'oidc_login_succeeded'), [{ provider: 'google', userId: externalUserId(google.issuer, 'mia') }])
  t.notOk(lines.some(line => line.includes(idToken.split('.')[1] ?? '-')), 'the ID token never reaches the log')
})

t.test('refused ID tokens: 401 INVALID_ID_TOKEN, audited, no session', async (t) => {
  const { app, google, entra, lines } = await withExchange(t)
  const now = Math.floor(Date.now() / 1000)
  const good = { sub: 'mia', aud: 'mobile', nonce: 'n-1' }
  const stranger = await generateKeyPair('RS256', { extractable: true })
  const publicJwk = await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey)
  const cases: Array<[string, string, string?]> = [
    ['wrong audience (another client\'s)', await google.mint({ ...good, aud: 'web' }, { typ: 'JWT' }), 'n-1'],
    ['expired beyond the leeway', await google.mint({ ...good, iat: now - 600, exp: now - 120 }, { typ: 'JWT' }), 'n-1'],
    ['wrong nonce', await google.mint(good, { typ: 'JWT' }), 'n-2'],
    ['a nonce asked for, none carried', await google.mint({ sub: 'mia', aud: 'mobile' }, { typ: 'JWT' }), 'n-1'],
    ['an access token (typ at+jwt), not an ID token', await google.mint(good, { typ: 'at+jwt' }), 'n-1'],
    ['several audiences, azp another client', await google.mint({ ...good, aud: ['mobile', 'web'], azp: 'web' }, { typ: 'JWT' }), 'n-1'],
    ['another provider\'s token', await entra.mint({ ...good }, { typ: 'JWT' }), 'n-1'],
    ['a key not in the JWKS', await new SignJWT({ iss: google.issuer, ...good, exp: now + 300 }).setProtectedHeader({ alg: 'RS256', kid: 'key-1', typ: 'JWT' }).sign(stranger.privateKey), 'n-1'],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'key-1', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: google.issuer, ...good, exp: now + 300 })).toString('base64url')}.`, 'n-1'],
    ['HS256 keyed with a public key (algorithm confusion)', await new SignJWT({ iss: google.issuer, ...good, exp: now + 300 }).setProtectedHeader({ alg: 'HS256', kid: 'key-1', typ: 'JWT' }).sign(Buffer.from(JSON.stringify(publicJwk))), 'n-1'],
    ['garbage', 'not.a.jwt', undefined],
  ]
  for (const [name, idToken, nonce] of cases) {
    const answer = await exchange(app, 'google', { id_token: idToken, ...(nonce === undefined ? {} : { nonce }) })
    t.equal(answer.statusCode, 401, name)
    t.match(answer.json(), { code: 'INVALID_ID_TOKEN', message: 'The ID token is invalid' }, name)
    t.notOk('refresh_token' in answer.json())
  }
  t.equal((await exchange(app, 'google', { id_token: await google.mint(good, { typ: 'JWT' }) })).statusCode, 200, 'the same token without a nonce to match: accepted')
  const failed = lines.map(line => JSON.parse(line)).filter(line => line.event === 'oidc_login_failed')
  t.equal(failed.length, cases.length, 'each refusal audited')
  t.match(failed[2], { provider: 'google', reason: 'id token refused: nonce' })
})

t.test('roles mapped and updated at each sign-in; unknown names 404; bad bodies 400', async (t) => {
  const { app, entra } = await withExchange(t)
  const first = await exchange(app, 'entra', { id_token: await entra.mint({ sub: 'ada', aud: 'web', preferred_username: 'ada@contoso.test', roles: ['Admin', 'Reader'] }, { typ: 'JWT' }) })
  t.same((await profile(app, bearer(first.json().access_token))).json().roles, ['user', 'admin'], 'Admin mapped, Reader dropped')
  const second = await exchange(app, 'entra', { id_token: await entra.mint({ sub: 'ada', aud: 'web', preferred_username: 'ada@contoso.test', roles: ['Reader'] }, { typ: 'JWT' }) })
  t.same((await profile(app, bearer(second.json().access_token))).json().roles, ['user'], 'the admin role taken away at the provider')
  const older = await refresh(app, first.json().refresh_token)
  t.same((await profile(app, bearer(older.json().access_token))).json().roles, ['user'], 'and the first session\'s next token has the new roles')

  for (const name of ['nope', 'api-only']) {
    const answer = await exchange(app, name, { id_token: 'x' })
    t.equal(answer.statusCode, 404, name)
    t.match(answer.json(), { code: 'UNKNOWN_PROVIDER' })
  }
  for (const payload of [{}, { id_token: 42 }, { id_token: '' }, { id_token: 'x', nonce: 7 }]) {
    const answer = await exchange(app, 'entra', payload)
    t.equal(answer.statusCode, 400, JSON.stringify(payload))
  }
})

t.test('the provider\'s keys cannot be fetched: 503 PROVIDER_UNAVAILABLE; the login limit counts exchanges per client IP', async (t) => {
  const { app, google } = await withExchange(t, { RATE_LIMIT_LOGIN_MAX: '3' })
  const token = await google.mint({ sub: 'mia', aud: 'mobile' }, { typ: 'JWT' })
  await google.down()
  const began = Date.now()
  const down = await exchange(app, 'google', { id_token: token })
  t.equal(down.statusCode, 503)
  t.match(down.json(), { code: 'PROVIDER_UNAVAILABLE' })
  t.ok(Date.now() - began < 2500, `within about a second (${Date.now() - began} ms)`)
  await google.up()
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await exchange(app, 'google', { id_token: 'garbage' })).statusCode)
  t.same(statuses, [401, 401, 429], 'the fourth exchange of this IP in a minute (the 503 counted) is refused')
})
