import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JWTPayload } from 'jose'
import Provider from 'oidc-provider'
import { suiteCertificates } from './tls-certificates.js'

/** How the provider shapes its issuer and tokens, after the services it stands in for. */
export type ProviderKind = 'auth0' | 'entra' | 'google'

/** The API audience its access tokens are for. */
export const API_AUDIENCE = 'https://api.example.test'
/** Auth0 puts roles in a namespaced claim (a rule or action adds it). */
export const AUTH0_ROLES_CLAIM = 'https://example.com/roles'
const ENTRA_TENANT = '11111111-2222-3333-4444-555555555555'

export interface SigningKey { kid: string, alg: string, privateJwk: JWK }

/** An OIDC_PROVIDERS_FILE holding `entries`, in a directory of its own; its path. */
export function providersFile (entries: unknown[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'token-auth-oidc-')), 'providers.json')
  writeFileSync(file, JSON.stringify(entries))
  return file
}

export interface TestProviderOptions {
  /** more redirect URIs of the `web` client (exact, as a web client's are); it has http://127.0.0.1/callback */
  redirectUris?: string[]
  /** profile, email and roles only from userinfo, the ID token carrying `sub` alone (conformIdTokenClaims) */
  claimsInUserinfo?: boolean
}

/** What its test users' accounts hold: each login name is an account, `admin` has the admin role. */
export const TEST_USER_PASSWORD = 'any'

async function signingKey (kid: string, alg = 'RS256'): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' } }
}

/**
 * A real OpenID provider (panva's oidc-provider, OpenID certified) on a free loopback port over HTTPS,
 * with the suite's certificate (trusted through NODE_EXTRA_CA_CERTS, as a private CA is in production):
 * - auth0: issuer https://localhost:<port>/, JWT access tokens for API_AUDIENCE, roles in AUTH0_ROLES_CLAIM;
 * - entra: issuer https://localhost:<port>/<tenant>/v2.0, roles in `roles`, `tid` in tokens;
 * - google: issuer https://localhost:<port>, ID tokens only.
 * Its keys can be rotated, it can go down and come back on the same port, and tests may sign tokens
 * with its private key (`mint`) for claims no real flow would produce. It counts JWKS requests.
 */
export class TestOidcProvider {
  readonly kind: ProviderKind
  readonly issuer: string
  readonly port: number
  /** signing keys, the one that signs first; all published */
  keys: SigningKey[]
  /** GET requests for its JWKS so far */
  jwksRequests = 0
  /** set: its token endpoint answers 502 with an HTML page, as a failing gateway in front of it would */
  tokenEndpointFailing = false
  readonly #server: Server
  readonly #prefix: string
  readonly #options: TestProviderOptions
  #provider: Provider

  private constructor (kind: ProviderKind, server: Server, port: number, keys: SigningKey[], options: TestProviderOptions) {
    this.kind = kind
    this.#options = options
    this.#server = server
    this.port = port
    this.#prefix = kind === 'entra' ? `/${ENTRA_TENANT}/v2.0` : ''
    this.issuer = `https://localhost:${port}${kind === 'auth0' ? '/' : this.#prefix}`
    this.keys = keys
    this.#provider = this.#make()
  }

  static async start (kind: ProviderKind, options: TestProviderOptions = {}): Promise<TestOidcProvider> {
    const { key, cert } = suiteCertificates()
    const server = createServer({ key: readFileSync(key), cert: readFileSync(cert) })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const provider = new TestOidcProvider(kind, server, (server.address() as AddressInfo).port, [await signingKey('key-1')], options)
    server.on('request', (request: IncomingMessage, response: ServerResponse) => { provider.#handle(request, response) })
    return provider
  }

  /** The path of its JWKS as clients ask for it. */
  get jwksPath (): string {
    return `${this.#prefix}/jwks`
  }

  /** Publishes a new key that signs from now on; the old ones stay published. */
  async rotateKey (alg = 'RS256'): Promise<SigningKey> {
    const next = await signingKey(`key-${this.keys.length + 1}`, alg)
    this.keys = [next, ...this.keys]
    this.#provider = this.#make()
    return next
  }

  /**
   * Signs `claims` with its current key (or `key`), as its own tokens are: for claims, lifetimes and
   * headers that a test needs and no flow would give. `iss` defaults to its issuer.
   */
  async mint (claims: JWTPayload, options: { key?: SigningKey, typ?: string, header?: Record<string, unknown> } = {}): Promise<string> {
    const key = options.key ?? this.keys[0] as SigningKey
    const now = Math.floor(Date.now() / 1000)
    return await new SignJWT({ iss: this.issuer, iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: options.typ ?? (this.kind === 'google' ? 'JWT' : 'at+jwt'), ...options.header })
      .sign(await importJWK(key.privateJwk, key.alg))
  }

  /**
   * Goes through its login and consent pages as a browser would (its dev interactions: any password),
   * from the authorization URL our /start redirected to, signed in as `login`; resolves with where it
   * sends the browser back (our callback with code and state, or with an error), not followed.
   */
  async signIn (authorizationUrl: string, login: string, options: { deny?: boolean } = {}): Promise<URL> {
    const cookies = new Map<string, string>()
    let url = new URL(authorizationUrl)
    let body: URLSearchParams | undefined
    for (let hop = 0; hop < 20; hop++) {
      if (url.origin !== new URL(this.issuer).origin) return url
      const response = await fetch(url, {
        method: body === undefined ? 'GET' : 'POST',
        redirect: 'manual',
        headers: { cookie: [...cookies].map(([name, value]) => `${name}=${value}`).join('; '), ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
        ...(body === undefined ? {} : { body }),
      })
      for (const line of response.headers.getSetCookie()) {
        const [pair = ''] = line.split(';')
        const at = pair.indexOf('=')
        cookies.set(pair.slice(0, at), pair.slice(at + 1))
      }
      const location = response.headers.get('location')
      if (location !== null) {
        url = new URL(location, url)
        body = undefined
        continue
      }
      // A page of its dev interactions: the login form, then the consent form.
      const page = await response.text()
      if (response.status !== 200 || !url.pathname.includes('/interaction/')) throw new Error(`the provider answered ${response.status} at ${url.pathname}: ${page.slice(0, 300)}`)
      if (options.deny === true) {
        // The page's "[ Cancel ]" link: the provider answers the client with access_denied.
        url = new URL(`${url.pathname}/abort`, url)
        continue
      }
      body = new URLSearchParams(page.includes('name="login"') ? { prompt: 'login', login, password: TEST_USER_PASSWORD } : { prompt: 'consent' })
    }
    throw new Error('the provider never sent the browser back')
  }

  /** Stops answering: new connections are refused, open ones dropped. */
  async down (): Promise<void> {
    this.#server.closeAllConnections()
    await new Promise(resolve => this.#server.close(resolve))
  }

  /** Answers again, on the same port. */
  async up (): Promise<void> {
    await new Promise<void>(resolve => this.#server.listen(this.port, '127.0.0.1', resolve))
  }

  async stop (): Promise<void> {
    if (!this.#server.listening) return
    await this.down()
  }

  #handle (request: IncomingMessage, response: ServerResponse): void {
    const url = request.url ?? '/'
    if (url.split('?')[0] === this.jwksPath) this.jwksRequests++
    if (this.tokenEndpointFailing && url.split('?')[0] === `${this.#prefix}/token`) {
      response.writeHead(502, { 'content-type': 'text/html' }).end('<html><body>Bad Gateway</body></html>')
      return
    }
    if (this.#prefix !== '') {
      if (!url.startsWith(this.#prefix)) {
        response.statusCode = 404
        response.end()
        return
      }
      // Mounted under the tenant path, as Entra's issuer has it: its URLs keep the prefix (originalUrl).
      ;(request as IncomingMessage & { originalUrl?: string }).originalUrl = url
      request.url = url.slice(this.#prefix.length) || '/'
    }
    this.#provider.callback()(request, response)
  }

  #make (): Provider {
    const rolesClaim = this.kind === 'auth0' ? AUTH0_ROLES_CLAIM : 'roles'
    const rolesOf = (accountId: string) => this.kind === 'entra'
      ? (accountId === 'admin' ? ['Admin', 'Reader'] : ['Reader'])
      : (accountId === 'admin' ? ['admin'] : [])
    const provider = new Provider(this.issuer, {
      jwks: { keys: this.keys.map(key => key.privateJwk) as never },
      cookies: { keys: ['test-cookie-key'] },
      clients: [
        { client_id: 'web', client_secret: 'web-secret', token_endpoint_auth_method: 'client_secret_basic', redirect_uris: ['http://127.0.0.1/callback', ...this.#options.redirectUris ?? []], grant_types: ['authorization_code', 'client_credentials'], response_types: ['code'] },
        // A public client (an SPA's, or a backend without a secret): PKCE is its only proof.
        { client_id: 'spa', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/callback', ...this.#options.redirectUris ?? []], grant_types: ['authorization_code'], response_types: ['code'] },
        { client_id: 'mobile', token_endpoint_auth_method: 'none', application_type: 'native', redirect_uris: ['com.example.app:/callback'], grant_types: ['authorization_code'], response_types: ['code'] },
      ],
      pkce: { required: () => true },
      // Roles go with every token, as Auth0's actions and Entra's app roles put them, whatever the scope;
      // with claimsInUserinfo, only userinfo has them (and profile and email).
      claims: this.#options.claimsInUserinfo === true
        ? { openid: ['sub'], email: ['email', 'email_verified'], profile: ['preferred_username', rolesClaim] }
        : { openid: ['sub', rolesClaim], email: ['email', 'email_verified'], profile: ['preferred_username'] },
      conformIdTokenClaims: this.#options.claimsInUserinfo === true,
      findAccount: async (_ctx, sub) => ({
        accountId: sub,
        claims: async () => ({ sub, email: `${sub}@example.test`, email_verified: true, preferred_username: sub, [rolesClaim]: rolesOf(sub) }),
      }),
      extraTokenClaims: async (_ctx, token) => {
        const accountId = (token as { accountId?: string }).accountId ?? ''
        return { [rolesClaim]: rolesOf(accountId), ...(this.kind === 'entra' ? { tid: ENTRA_TENANT } : {}) }
      },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        ...(this.kind === 'google'
          ? {}
          : {
              resourceIndicators: {
                enabled: true,
                defaultResource: async () => API_AUDIENCE,
                useGrantedResource: async () => true,
                getResourceServerInfo: async () => ({ scope: 'read', audience: API_AUDIENCE, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
              },
            }),
      },
    })
    return provider
  }
}
