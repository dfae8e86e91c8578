import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../src/config.js'
import { loadOidcProviders } from '../src/oidc/providers.js'

// OIDC_PROVIDERS_FILE, OIDC_RETURN_ORIGINS and PUBLIC_ORIGIN, read and checked at start-up.

const dir = mkdtempSync(join(tmpdir(), 'token-auth-oidc-'))
let files = 0
function providersFile (content: unknown): string {
  const path = join(dir, `providers-${files++}.json`)
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

const AUTH0 = { name: 'auth0', issuer: 'https://tenant.eu.auth0.com/', audience: 'https://api.example.com', clientId: 'spa-client', rolesClaim: 'https://example.com/roles' }

function refused (t: Test, content: unknown, pattern: RegExp, what: string, environment: NodeJS.ProcessEnv = {}, isProduction = false): string {
  let error: unknown
  try {
    loadOidcProviders(providersFile(content), environment, isProduction)
  } catch (err) {
    error = err
  }
  t.ok(error instanceof ConfigError, `${what}: refused`)
  const message = (error as Error | undefined)?.message ?? ''
  t.match(message, /^OIDC_PROVIDERS_FILE: /, `${what}: names the variable`)
  t.match(message, pattern, `${what}: says why (${message})`)
  return message
}

t.test('a providers file: defaults applied, secrets taken from the environment when named', async (t) => {
  t.same(loadOidcProviders(undefined, {}, true), [], 'unset: no providers')
  const [auth0, google] = loadOidcProviders(providersFile([
    AUTH0,
    { name: 'google', issuer: 'https://accounts.google.com', clientId: 'g-client', clientSecretEnv: 'GOOGLE_SECRET', algorithms: ['RS256', 'ES256'] },
  ]), { GOOGLE_SECRET: 'from-env' }, true)
  t.same(auth0, { ...AUTH0, clientSecret: undefined, roleMap: undefined, defaultRoles: ['user'], algorithms: ['RS256'] })
  t.same(google, { name: 'google', issuer: 'https://accounts.google.com', audience: undefined, clientId: 'g-client', clientSecret: 'from-env', rolesClaim: 'roles', roleMap: undefined, defaultRoles: ['user'], algorithms: ['RS256', 'ES256'] })
})

t.test('what a providers file may not say, refused with the entry and field named and no value from the file', async (t) => {
  refused(t, '[{"name": "x", "issuer": "https://secret-in-broken-json', /not valid JSON/, 'broken JSON')
  t.notMatch(refused(t, '{"clientSecret": "hunter2"', /not valid JSON/, 'broken JSON with a secret'), 'hunter2', 'the parser\'s quote of the file is not repeated')
  refused(t, { name: 'x' }, /not a valid providers file/, 'not an array')
  refused(t, [{ ...AUTH0, name: 'Auth0' }], /\/0\/name/, 'an upper-case name')
  refused(t, [{ ...AUTH0, client_id: 'typo' }], /not a valid providers file/, 'an unknown field (a typo)')
  for (const algorithm of ['none', 'HS256', 'HS512']) refused(t, [{ ...AUTH0, algorithms: [algorithm] }], new RegExp(`algorithm ${algorithm} is refused`), `algorithm ${algorithm}`)
  refused(t, [{ ...AUTH0, algorithms: ['RS1'] }], /algorithm RS1 is not one of RS256/, 'an unknown algorithm')
  refused(t, [{ ...AUTH0, issuer: 'not a url' }], /entry 0 \('auth0'\): issuer must be an https URL/, 'an issuer that is not a URL')
  refused(t, [{ ...AUTH0, issuer: 'https://tenant.auth0.com/?x=1' }], /without query/, 'an issuer with a query')
  refused(t, [{ ...AUTH0, issuer: 'http://idp.internal/' }], /production requires an https issuer/, 'http in production', {}, true)
  t.equal(loadOidcProviders(providersFile([{ ...AUTH0, issuer: 'http://127.0.0.1:9999' }]), {}, false)[0]?.issuer, 'http://127.0.0.1:9999', 'http outside production (development, tests)')
  refused(t, [AUTH0, { ...AUTH0, name: 'other' }], /two providers have the issuer of 'other'/, 'one issuer twice')
  refused(t, [AUTH0, { ...AUTH0, name: 'again', issuer: 'https://tenant.eu.auth0.com' }], /two providers have the issuer of 'again'/, 'one issuer twice, with and without its slash')
  refused(t, [AUTH0, { ...AUTH0, issuer: 'https://other.example.com/' }], /two providers have the name of 'auth0'/, 'one name twice')
  refused(t, [{ ...AUTH0, clientSecret: 's', clientSecretEnv: 'S' }], /both set/, 'a secret and its variable')
  refused(t, [{ ...AUTH0, clientSecretEnv: 'MISSING_SECRET' }], /MISSING_SECRET, which is not set/, 'a secret variable that is not set')
  refused(t, [{ name: 'api', issuer: 'https://idp.example.com', audience: 'a', clientSecret: 's' }], /client secret without clientId/, 'a secret without a client')
  refused(t, [{ name: 'idle', issuer: 'https://idp.example.com' }], /would do nothing/, 'neither audience nor clientId')
  t.notMatch(refused(t, [{ ...AUTH0, clientSecret: 'hunter2', algorithms: ['HS256'] }], /refused/, 'an entry with a secret'), 'hunter2', 'never the secret')
  refused(t, join(dir, 'missing.json'), /not valid JSON|cannot read/, 'the content is a path string, not JSON')
})

t.test('the environment: OIDC_PROVIDERS_FILE read at start-up; OIDC_RETURN_ORIGINS and PUBLIC_ORIGIN exact origins', async (t) => {
  const config = loadConfig({ OIDC_PROVIDERS_FILE: providersFile([AUTH0]), OIDC_RETURN_ORIGINS: 'https://app.example.com, http://localhost:5173', PUBLIC_ORIGIN: 'https://api.example.com' })
  t.same(config.oidc.providers.map(p => p.name), ['auth0'])
  t.same(config.oidc.returnOrigins, ['https://app.example.com', 'http://localhost:5173'])
  t.equal(config.oidc.publicOrigin, 'https://api.example.com')
  t.same(loadConfig({}).oidc, { providers: [], returnOrigins: [], publicOrigin: undefined }, 'all unset: no federation')

  const missing = (() => { try { loadConfig({ OIDC_PROVIDERS_FILE: join(dir, 'nope.json') }) } catch (err) { return err as Error } })()
  t.match(missing?.message, /^OIDC_PROVIDERS_FILE: cannot read .*nope\.json \(ENOENT\)/)
  for (const [variable, value] of [['OIDC_RETURN_ORIGINS', 'https://app.example.com/path'], ['PUBLIC_ORIGIN', 'https://a.example.com,https://b.example.com'], ['PUBLIC_ORIGIN', 'api.example.com']]) {
    const error = (() => { try { loadConfig({ [variable as string]: value }) } catch (err) { return err as Error } })()
    t.ok(error instanceof ConfigError, `${variable}=${value}: refused`)
    t.match(error?.message, new RegExp(`^${variable}: `), 'naming the variable')
  }
})
