import t from 'tap'
import { ExternalTokens } from '../src/oidc/external-tokens.js'
import { loadOidcProviders } from '../src/oidc/providers.js'
import { InvalidReturnToError, OidcSignIn, SignInError, UnknownProviderError, returnToOrRefuse } from '../src/oidc/sign-in.js'
import { MemoryStore } from '../src/store/index.js'
import { TestOidcProvider, providersFile } from './helpers/oidc-provider.js'

// The sign-in core without HTTP: where a browser may be sent back to, and one code flow over the
// embedded store against a real provider.

const API = 'https://api.example.test'

t.test('returnToOrRefuse: a path here, or an origin of the list, exactly; nothing a browser could read as another site', async (t) => {
  const allowed = ['https://app.example.test', 'http://localhost:5173']
  t.equal(returnToOrRefuse(undefined, API, allowed), `${API}/`, 'missing: the API\'s own /')
  t.equal(returnToOrRefuse('/docs?x=1#top', API, allowed), `${API}/docs?x=1#top`)
  t.equal(returnToOrRefuse(`${API}/health`, API, allowed), `${API}/health`)
  t.equal(returnToOrRefuse('https://app.example.test/after?sign=in', API, allowed), 'https://app.example.test/after?sign=in')
  t.equal(returnToOrRefuse('http://localhost:5173/', API, allowed), 'http://localhost:5173/')
  for (const refused of [
    '', 'https://evil.example/', '//evil.example', '///evil.example', '/\\evil.example', '\\\\evil.example', 'https:evil.example',
    'https://app.example.test.evil.example/', 'https://app.example.test@evil.example/', 'https://evil.example#https://app.example.test',
    'http://app.example.test/', 'https://app.example.test:444/', 'http://localhost:5174/', 'javascript:alert(1)', 'data:text/html,x',
    '/docs\n', '/\tevil', 'https://user:pw@app.example.test/', 'relative/path', 'http://api.example.test/',
  ]) t.throws(() => returnToOrRefuse(refused, API, allowed), InvalidReturnToError, JSON.stringify(refused))
})

t.test('OidcSignIn over the embedded store: one attempt per start, taken by its callback, the identity the provider vouched for', async (t) => {
  const provider = await TestOidcProvider.start('auth0', { redirectUris: [`${API}/auth/oidc/auth0/callback`] })
  t.teardown(() => provider.stop())
  const file = providersFile([{ name: 'auth0', issuer: provider.issuer, clientId: 'web', clientSecret: 'web-secret', rolesClaim: 'https://example.com/roles' }, { name: 'resource', issuer: 'https://r.example.test/', audience: 'x' }])
  const providers = loadOidcProviders(file, {}, false)
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const signIn = new OidcSignIn(providers, store, new ExternalTokens(providers))
  t.throws(() => signIn.provider('resource'), UnknownProviderError, 'a provider without a clientId is not for sign-in')
  t.throws(() => signIn.provider('nope'), UnknownProviderError)

  const auth0 = signIn.provider('auth0')
  const { url, state } = await signIn.start(auth0, { redirectUri: `${API}/auth/oidc/auth0/callback`, returnTo: `${API}/done` })
  t.equal(url.searchParams.get('state'), state)
  t.equal(store.size.signInAttempts, 1, 'held in the store')
  const back = await provider.signIn(url.href, 'admin')
  const finished = await signIn.finish(auth0, { query: back.searchParams, boundState: state })
  t.equal(finished.returnTo, `${API}/done`)
  t.match(finished.identity, { subject: 'admin', username: 'admin', email: 'admin@example.test', roles: ['user', 'admin'] })
  t.equal(store.size.signInAttempts, 0, 'taken')
  await t.rejects(signIn.finish(auth0, { query: back.searchParams, boundState: state }), SignInError, 'once')

  // The ID token's signature is checked too, by the provider's keys and the algorithms configured for it:
  // a provider listed for ES256 only that signs with RS256 signs nobody in.
  const strict = new OidcSignIn([{ ...auth0, algorithms: ['ES256'] }], store, new ExternalTokens([{ ...auth0, algorithms: ['ES256'] }]))
  const second = await strict.start(strict.provider('auth0'), { redirectUri: `${API}/auth/oidc/auth0/callback`, returnTo: `${API}/` })
  const secondBack = await provider.signIn(second.url.href, 'admin')
  await t.rejects(strict.finish(strict.provider('auth0'), { query: secondBack.searchParams, boundState: second.state }), { statusCode: 401, code: 'SIGN_IN_FAILED', reason: 'id token refused: alg' })
})
