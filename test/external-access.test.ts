import t, { type Test } from 'tap'
import { USERS, buildTestApp } from './helpers/app.js'
import { bearer, loginTokens, profile } from './helpers/http.js'
import { API_AUDIENCE, AUTH0_ROLES_CLAIM, TestOidcProvider, providersFile } from './helpers/oidc-provider.js'
import { externalUserId } from '../src/ids.js'

// Protected routes accept access tokens of the trusted providers (resource-server mode), through the
// same decorators as our own; routes about our sessions need one of ours.

async function withProviders (t: Test) {
  const auth0 = await TestOidcProvider.start('auth0')
  const entra = await TestOidcProvider.start('entra')
  t.teardown(async () => { await auth0.stop(); await entra.stop() })
  const file = providersFile([
    { name: 'auth0', issuer: auth0.issuer, audience: API_AUDIENCE, rolesClaim: AUTH0_ROLES_CLAIM },
    { name: 'entra', issuer: entra.issuer, audience: API_AUDIENCE, roleMap: { Admin: 'admin' } },
  ])
  const lines: string[] = []
  const { app } = await buildTestApp(t, 'memory', { OIDC_PROVIDERS_FILE: file, LOG_LEVEL: 'info' }, { logStream: { write: (line: string) => { lines.push(line) } } })
  return { app, auth0, entra, lines }
}

t.test('an external access token on /api/profile and /api/admin: the identity and roles its provider gives', async (t) => {
  const { app, auth0, entra } = await withProviders(t)
  const alice = await auth0.mint({ sub: 'auth0|alice', aud: API_AUDIENCE, email: 'alice@example.test', [AUTH0_ROLES_CLAIM]: ['admin'] })
  const aliceProfile = await profile(app, bearer(alice))
  t.equal(aliceProfile.statusCode, 200)
  t.same(aliceProfile.json(), { id: externalUserId(auth0.issuer, 'auth0|alice'), username: 'alice@example.test', email: 'alice@example.test', roles: ['user', 'admin'] })
  t.equal((await app.inject({ url: '/api/admin', headers: bearer(alice) })).statusCode, 200, 'its admin role opens /api/admin')

  const reader = await entra.mint({ sub: 'entra-sub', aud: API_AUDIENCE, preferred_username: 'reader@contoso.test', roles: ['Reader'] }, { typ: 'JWT' })
  t.same((await profile(app, bearer(reader))).json().roles, ['user'], 'Entra roles through roleMap: Reader is dropped')
  const denied = await app.inject({ url: '/api/admin', headers: bearer(reader) })
  t.equal(denied.statusCode, 403)
  const admin = await entra.mint({ sub: 'entra-admin', aud: API_AUDIENCE, roles: ['Admin'] }, { typ: 'JWT' })
  t.equal((await app.inject({ url: '/api/admin', headers: bearer(admin) })).statusCode, 200, 'Admin maps to admin')

  const own = await loginTokens(app, USERS.alice)
  t.equal((await profile(app, bearer(own.access_token))).json().username, USERS.alice.username, 'our own tokens as before')
})

t.test('refusals: 401 with the RFC 6750 challenge for a bad external token, 503 when its provider cannot be reached, 403 on routes about our sessions', async (t) => {
  const { app, auth0, entra, lines } = await withProviders(t)
  const misaddressed = await auth0.mint({ sub: 's', aud: 'https://elsewhere.example' })
  const wrongAudience = await profile(app, bearer(misaddressed))
  t.equal(wrongAudience.statusCode, 401)
  t.equal(wrongAudience.json().code, 'INVALID_ACCESS_TOKEN')
  t.match(wrongAudience.headers['www-authenticate'], /^Bearer error="invalid_token"/)
  for (let i = 0; i < 5; i++) await profile(app, bearer(misaddressed))
  const refused = lines.filter(line => line.includes('"event":"external_token_refused"'))
  t.equal(refused.length, 1, 'six refusals for one reason: one audit line this minute')
  t.match(JSON.parse(refused[0] ?? '{}'), { event: 'external_token_refused', issuer: auth0.issuer, reason: 'ERR_JWT_CLAIM_VALIDATION_FAILED' })
  t.notOk(refused[0]?.includes(misaddressed.split('.')[1] ?? '-'), 'never the token')

  const unknownIssuer = await profile(app, bearer(await auth0.mint({ sub: 's', aud: API_AUDIENCE, iss: 'https://unknown.example/' })))
  t.equal(unknownIssuer.statusCode, 401, 'a token of an issuer no provider has: 401')
  t.match(unknownIssuer.headers['www-authenticate'], /^Bearer error="invalid_token"/)

  const good = await auth0.mint({ sub: 's', aud: API_AUDIENCE })
  const sessions = await app.inject({ url: '/auth/sessions', headers: bearer(good) })
  t.equal(sessions.statusCode, 403)
  t.equal(sessions.json().code, 'OWN_SESSION_REQUIRED', 'an external token has no session here: 403, not 401')
  t.equal((await app.inject({ method: 'POST', url: '/auth/logout-all', headers: bearer(good) })).statusCode, 403)

  // Entra has not been asked for its keys yet; now it cannot be reached.
  await entra.down()
  const unreachable = await profile(app, bearer(await entra.mint({ sub: 's', aud: API_AUDIENCE }, { typ: 'JWT' })))
  t.equal(unreachable.statusCode, 503, 'a token whose keys must be fetched: 503')
  t.equal(unreachable.json().code, 'PROVIDER_UNAVAILABLE')
  t.equal(unreachable.headers['retry-after'], '1')

  await auth0.down()
  t.equal((await profile(app, bearer(good))).statusCode, 200, 'a key already fetched: still served while its provider is down')
  const unknownKid = await profile(app, bearer(await auth0.mint({ sub: 's', aud: API_AUDIENCE }, { header: { kid: 'made-up' } })))
  t.equal(unknownKid.statusCode, 401, 'an unknown kid while no refetch is due (its keys were fetched under 10 s ago): 401')
})
