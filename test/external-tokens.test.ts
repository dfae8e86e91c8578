import { createServer } from 'node:net'
import { createPublicKey } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import * as client from 'openid-client'
import t, { type Test } from 'tap'
import { ExternalTokens, acceptedIssuers, identityOf } from '../src/oidc/external-tokens.js'
import { externalUserId } from '../src/ids.js'
import type { OidcProviderConfig } from '../src/oidc/providers.js'
import { ID_PATTERN } from '../src/ids.js'
import { API_AUDIENCE, AUTH0_ROLES_CLAIM, TestOidcProvider, type ProviderKind } from './helpers/oidc-provider.js'

// ExternalTokens alone (no HTTP): access tokens of trusted providers, verified against a real
// OpenID provider (oidc-provider) over HTTPS with the suite's CA.

function configFor (provider: TestOidcProvider, overrides: Partial<OidcProviderConfig> = {}): OidcProviderConfig {
  return {
    name: provider.kind,
    issuer: provider.issuer,
    audience: API_AUDIENCE,
    clientId: undefined,
    clientSecret: undefined,
    rolesClaim: provider.kind === 'auth0' ? AUTH0_ROLES_CLAIM : 'roles',
    roleMap: undefined,
    defaultRoles: ['user'],
    algorithms: ['RS256'],
    ...overrides,
  }
}

async function started (t: Test, kind: ProviderKind): Promise<TestOidcProvider> {
  const provider = await TestOidcProvider.start(kind)
  t.teardown(() => provider.stop())
  return provider
}

const now = () => Math.floor(Date.now() / 1000)

async function refusal (promise: Promise<unknown>): Promise<{ status?: number, reason?: string, name?: string }> {
  try {
    await promise
    return {}
  } catch (err) {
    const e = err as { statusCode?: number, reason?: string, name?: string }
    return { status: e.statusCode, reason: e.reason, name: e.name }
  }
}

t.test('a token the provider issued (client credentials, JWT access token for the API) verifies; the identity is stable per issuer and subject', async (t) => {
  const provider = await started(t, 'auth0')
  const tokens = new ExternalTokens([configFor(provider)])
  const discovered = await client.discovery(new URL(provider.issuer), 'web', 'web-secret')
  const { access_token: accessToken } = await client.clientCredentialsGrant(discovered, { resource: API_AUDIENCE })
  t.equal(tokens.providerOf(accessToken)?.name, 'auth0', 'its iss picks the provider')
  const identity = await tokens.verify(accessToken, configFor(provider))
  t.equal(identity.subject, 'web', 'sub: the client (client credentials)')
  t.equal(identity.id, externalUserId(provider.issuer, 'web'))
  t.match(identity.id, /^x-[A-Za-z0-9_-]{22}$/)
  t.notOk(ID_PATTERN.test(identity.id), 'never the shape of a local id')
  t.not(externalUserId('https://other.example.com/', 'web'), identity.id, 'the same sub at another issuer is another id')

  const user = await tokens.verify(await provider.mint({ sub: 'alice', aud: API_AUDIENCE, [AUTH0_ROLES_CLAIM]: ['admin'], email: 'alice@example.test' }), configFor(provider))
  t.same({ username: user.username, email: user.email, roles: user.roles }, { username: 'alice@example.test', email: 'alice@example.test', roles: ['user', 'admin'] })
})

t.test('refused with 401: wrong audience, expired, not yet valid, alg none, HS256 with the public key, a key not in the JWKS, another provider\'s kid, a wrong typ', async (t) => {
  const provider = await started(t, 'auth0')
  const other = await started(t, 'google')
  const config = configFor(provider)
  const tokens = new ExternalTokens([config, configFor(other, { name: 'other', audience: API_AUDIENCE })], { refetchAfterMs: 0 })
  const good = { sub: 'alice', aud: API_AUDIENCE }
  t.equal((await tokens.verify(await provider.mint({ ...good, exp: now() - 30 }), config)).subject, 'alice', 'expired 30 s ago: within the 60 s leeway')
  t.equal((await tokens.verify(await provider.mint({ ...good, aud: ['https://another-api.example', API_AUDIENCE] }), config)).subject, 'alice', 'an aud array containing the audience')
  // Listed for RS256 and ES256 both: a header claiming ES256 over its RSA key still fails (the key decides).
  const twoAlgorithms = { ...config, algorithms: ['RS256', 'ES256'] as Array<'RS256' | 'ES256'> }
  const rsaKeyEs256Header = await provider.mint(good)
  const [, payload, signature] = rsaKeyEs256Header.split('.')
  const relabelled = `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: provider.keys[0]!.kid, typ: 'at+jwt' })).toString('base64url')}.${payload}.${signature}`
  t.equal((await refusal(tokens.verify(relabelled, twoAlgorithms))).status, 401, 'an algorithm of the list that does not match the key: 401')

  const foreignKey = await generateKeyPair('RS256', { extractable: true })
  const foreignJwk: JWK = { ...(await exportJWK(foreignKey.privateKey)), kid: 'not-published', alg: 'RS256' }
  // Algorithm confusion: the provider's public key (as its JWKS publishes it) used as an HMAC secret.
  const { n, e } = provider.keys[0]!.privateJwk
  const publicPem = createPublicKey({ key: { kty: 'RSA', n: n!, e: e! }, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
  const hs256 = await new SignJWT({ ...good, iss: provider.issuer, exp: now() + 60 }).setProtectedHeader({ alg: 'HS256', kid: provider.keys[0]!.kid, typ: 'at+jwt' }).sign(new TextEncoder().encode(publicPem))
  const unsigned = (header: object, payload: object) => `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`
  const cases: Array<[string, string]> = [
    ['wrong audience', await provider.mint({ ...good, aud: 'https://another-api.example' })],
    ['expired (past the leeway)', await provider.mint({ ...good, exp: now() - 120 })],
    ['not yet valid (nbf past the leeway)', await provider.mint({ ...good, nbf: now() + 120 })],
    ['alg none', unsigned({ alg: 'none', kid: provider.keys[0]!.kid, typ: 'at+jwt' }, { ...good, iss: provider.issuer, exp: now() + 60 })],
    ['HS256 signed with the provider\'s public key', hs256],
    ['a key not in its JWKS', await provider.mint(good, { key: { kid: 'not-published', alg: 'RS256', privateJwk: foreignJwk } })],
    ['another provider\'s kid and key, with this iss', await other.mint({ ...good, iss: provider.issuer })],
    ['typ id_token-ish (not JWT or at+jwt)', await provider.mint(good, { typ: 'id+jwt' })],
    ['no sub', await provider.mint({ aud: API_AUDIENCE })],
    ['a tampered payload', (await provider.mint(good)).replace(/\.([^.]+)\./, (_m, p: string) => `.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), sub: 'root' })).toString('base64url')}.`)],
  ]
  for (const [what, token] of cases) {
    const refused = await refusal(tokens.verify(token, config))
    t.equal(refused.status, 401, `${what}: 401 (${refused.reason ?? ''})`)
  }
  t.equal(tokens.providerOf(await provider.mint({ ...good, iss: 'https://unknown.example/' })), undefined, 'an unknown issuer picks no provider')
})

t.test('key rotation at the provider is picked up without a restart; a flood of unknown kids costs it one JWKS request per window', async (t) => {
  const provider = await started(t, 'auth0')
  const config = configFor(provider)
  // A window well past what rotating the key costs on a busy machine (an RSA key is generated).
  const tokens = new ExternalTokens([config], { refetchAfterMs: 2000 })
  t.equal((await tokens.verify(await provider.mint({ sub: 'a', aud: API_AUDIENCE }), config)).subject, 'a')
  const fetched = provider.jwksRequests

  const next = await provider.rotateKey()
  const rotated = await provider.mint({ sub: 'a', aud: API_AUDIENCE }, { key: next })
  t.equal((await refusal(tokens.verify(rotated, config))).status, 401, 'a new kid within the window: 401, no fetch')
  await new Promise(resolve => setTimeout(resolve, 2100))
  t.equal((await tokens.verify(rotated, config)).subject, 'a', 'after the window: fetched, accepted')
  t.equal(provider.jwksRequests, fetched + 1)

  const flood = await Promise.all(Array.from({ length: 40 }, (_, i) => provider.mint({ sub: 'a', aud: API_AUDIENCE }, { header: { kid: `random-${i}` } })))
  const before = provider.jwksRequests
  const floodStart = Date.now()
  while (Date.now() - floodStart < 1000) await Promise.all(flood.map(token => refusal(tokens.verify(token, config))))
  const windows = Math.ceil((Date.now() - floodStart) / 2000) + 1
  t.ok(provider.jwksRequests - before <= windows, `${provider.jwksRequests - before} JWKS requests for a second of 40 made-up kids at a time (at most one per 2 s window: ${windows})`)
})

t.test('provider down: known keys keep working; a token that needs a fetch gets 503 within about a second', async (t) => {
  const provider = await started(t, 'entra')
  const config = configFor(provider)
  const tokens = new ExternalTokens([config], { refetchAfterMs: 0 })
  const known = await provider.mint({ sub: 'a', aud: API_AUDIENCE, roles: ['Reader'] })
  t.equal((await tokens.verify(known, config)).subject, 'a')
  await provider.down()
  t.equal((await tokens.verify(known, config)).subject, 'a', 'a key already fetched stays usable')
  const unknown = await provider.mint({ sub: 'a', aud: API_AUDIENCE }, { header: { kid: 'new' } })
  const refused = await refusal(tokens.verify(unknown, config))
  t.equal(refused.status, 503, 'an unknown kid with the provider refusing connections: 503')

  // A provider that accepts connections and never answers: 503 after the 1 s fetch timeout.
  const silent = createServer(() => {})
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.close() })
  const port = (silent.address() as { port: number }).port
  const stalled = { ...config, name: 'stalled', issuer: `https://localhost:${port}` }
  const fresh = new ExternalTokens([stalled])
  const began = performance.now()
  const timedOut = await refusal(fresh.verify(await provider.mint({ sub: 'a', aud: API_AUDIENCE, iss: stalled.issuer }), stalled))
  const ms = performance.now() - began
  t.equal(timedOut.status, 503, 'discovery unanswered: 503')
  t.ok(ms >= 900 && ms < 1500, `after ${Math.round(ms)} ms`)
})

t.test('a discovery document naming another issuer is not trusted (503, keys never fetched)', async (t) => {
  const provider = await started(t, 'auth0')
  const lying = { ...configFor(provider), issuer: provider.issuer.replace(/\/$/, '') } // the document says ".../"
  const tokens = new ExternalTokens([lying])
  const refused = await refusal(tokens.verify(await provider.mint({ sub: 'a', aud: API_AUDIENCE, iss: lying.issuer }), lying))
  t.equal(refused.status, 503)
  t.equal(provider.jwksRequests, 0)
})

t.test('identities: roles are defaultRoles plus the claim (array or space-separated), mapped through roleMap when given; username falls back to email, then sub', async (t) => {
  const base = { name: 'p', issuer: 'https://idp.example.com/', audience: 'a', clientId: undefined, clientSecret: undefined, rolesClaim: 'roles', roleMap: undefined, defaultRoles: ['user'], algorithms: ['RS256'] } as OidcProviderConfig
  t.same(identityOf(base, { sub: 's', roles: ['Admin', 'Reader'] }).roles, ['user', 'Admin', 'Reader'], 'as they are without a roleMap')
  t.same(identityOf(base, { sub: 's', roles: 'Admin Reader' }).roles, ['user', 'Admin', 'Reader'], 'a space-separated string')
  t.same(identityOf({ ...base, roleMap: { Admin: 'admin' } }, { sub: 's', roles: ['Admin', 'Reader'] }).roles, ['user', 'admin'], 'mapped; unmapped dropped')
  t.same(identityOf({ ...base, roleMap: { user: 'user' } }, { sub: 's', roles: ['user'] }).roles, ['user'], 'no duplicates')
  t.same(identityOf({ ...base, roleMap: {} }, { sub: 's', roles: ['toString', '__proto__'] }).roles, ['user'], 'a prototype key maps to nothing')
  t.equal(identityOf(base, { sub: 's', preferred_username: 'pu', email: 'e@x' }).username, 'pu')
  t.equal(identityOf(base, { sub: 's', email: 'e@x' }).username, 'e@x')
  t.equal(identityOf(base, { sub: 's' }).username, 's')
  t.equal(identityOf(base, { sub: 's' }).email, null)
})

t.test('Google writes its issuer with and without the scheme: both pick the Google provider', async (t) => {
  const google = { name: 'google', issuer: 'https://accounts.google.com', audience: 'client.apps.googleusercontent.com', clientId: undefined, clientSecret: undefined, rolesClaim: 'roles', roleMap: undefined, defaultRoles: ['user'], algorithms: ['RS256'] } as OidcProviderConfig
  t.same(acceptedIssuers(google), ['https://accounts.google.com', 'accounts.google.com'])
  t.same(acceptedIssuers({ ...google, issuer: 'https://idp.example.com/' }), ['https://idp.example.com/'], 'others: exactly their issuer')
  const tokens = new ExternalTokens([google])
  const unsignedWith = (iss: string) => `e30.${Buffer.from(JSON.stringify({ iss })).toString('base64url')}.`
  t.equal(tokens.providerOf(unsignedWith('accounts.google.com'))?.name, 'google')
  t.equal(tokens.providerOf(unsignedWith('https://accounts.google.com'))?.name, 'google')
  t.equal(tokens.providerOf(unsignedWith('http://accounts.google.com')), undefined)
})
