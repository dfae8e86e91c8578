import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { buildTestApp, type StoreKind } from './app.js'
import { setCookies } from './http.js'
import { API_AUDIENCE, AUTH0_ROLES_CLAIM, TestOidcProvider, type TestProviderOptions, providersFile } from './oidc-provider.js'

/** The API's origin in sign-in tests (PUBLIC_ORIGIN): the redirect URIs registered at the providers. */
export const API = 'http://127.0.0.1'
export const callbackOf = (name: string) => `${API}/auth/oidc/${name}/callback`

export interface Providers { auth0: TestOidcProvider, google: TestOidcProvider }

export async function withSignIn (t: Test, store: StoreKind = 'memory', options: { env?: NodeJS.ProcessEnv, google?: TestProviderOptions } = {}) {
  const auth0 = await TestOidcProvider.start('auth0', { redirectUris: [callbackOf('auth0')] })
  const google = await TestOidcProvider.start('google', { redirectUris: [callbackOf('google')], ...options.google })
  t.teardown(async () => { await auth0.stop(); await google.stop() })
  const file = providersFile([
    { name: 'auth0', issuer: auth0.issuer, audience: API_AUDIENCE, clientId: 'web', clientSecret: 'web-secret', rolesClaim: AUTH0_ROLES_CLAIM },
    // A public client: no secret, PKCE only.
    { name: 'google', issuer: google.issuer, clientId: 'spa', roleMap: { admin: 'admin' } },
    { name: 'resource-only', issuer: 'https://resource.example.test/', audience: API_AUDIENCE },
  ])
  const lines: string[] = []
  const { app, config } = await buildTestApp(t, store, { OIDC_PROVIDERS_FILE: file, PUBLIC_ORIGIN: API, OIDC_RETURN_ORIGINS: 'https://app.example.test', LOG_LEVEL: 'info', ...options.env }, { logStream: { write: (line: string) => { lines.push(line) } } })
  return { app, config, providers: { auth0, google } as Providers, lines }
}

/** /start as a browser calls it: its redirect to the provider and the state cookie it set. */
export async function start (app: FastifyInstance, name: string, returnTo?: string) {
  const response = await app.inject({ url: `/auth/oidc/${name}/start${returnTo === undefined ? '' : `?return_to=${encodeURIComponent(returnTo)}`}` })
  return { response, location: response.headers.location ?? '', state: setCookies(response).get('oidc_state') }
}

/** The whole flow: /start, the provider's pages as `login`, and our callback with the browser's state cookie. */
export async function signIn (app: FastifyInstance, provider: TestOidcProvider, name: string, login: string, returnTo?: string) {
  const started = await start(app, name, returnTo)
  if (started.response.statusCode !== 302) throw new Error(`/start answered ${started.response.statusCode}: ${started.response.body}`)
  const back = await provider.signIn(started.location, login)
  const callback = await app.inject({ url: `${back.pathname}${back.search}`, cookies: { oidc_state: started.state?.value ?? '' } })
  return { started, back, callback }
}
