import { timingSafeEqual } from 'node:crypto'
import * as client from 'openid-client'
import type { RequestDeadline } from '../deadline.js'
import { ApiError } from '../errors.js'
import { sha256 } from '../ids.js'
import { SIGN_IN_ATTEMPT_TTL_MS, type AuthStore } from '../store/types.js'
import { ExternalTokenRefusedError, ProviderUnavailableError, identityOf, type ExternalIdentity, type ExternalTokens } from './external-tokens.js'
import type { OidcProviderConfig } from './providers.js'

/** No provider of that name users may sign in through (unknown, or configured for access tokens only). */
export class UnknownProviderError extends ApiError {
  constructor () {
    super(404, 'UNKNOWN_PROVIDER', 'No such identity provider')
  }
}

/** A `return_to` that is neither on this API's origin nor one of OIDC_RETURN_ORIGINS: no open redirect. */
export class InvalidReturnToError extends ApiError {
  constructor () {
    super(400, 'INVALID_RETURN_TO', 'return_to must be on this API\'s origin or one of OIDC_RETURN_ORIGINS')
  }
}

/** A sign-in that did not end in a session; `reason` is for the audit line, never the client. */
export class SignInError extends ApiError {
  readonly reason: string
  constructor (statusCode: number, code: string, message: string, reason: string) {
    super(statusCode, code, message)
    this.reason = reason
  }
}

/** The callback's state is missing, unknown, expired, used already, or not this browser's. */
function invalidState (reason: string): SignInError {
  return new SignInError(400, 'INVALID_SIGN_IN_STATE', 'This sign-in is unknown, expired, already used or was started in another browser; start again', reason)
}

/** What a browser sign-in keeps server-side between /start and its callback. */
interface SignInAttempt {
  provider: string
  verifier: string
  nonce: string
  returnTo: string
  redirectUri: string
}

/**
 * Where a browser sign-in may return to: a path on this API, or an absolute URL whose origin is this
 * API's or one of `allowedOrigins` (exact). Missing: the API's own `/`. Anything else throws
 * InvalidReturnToError; backslashes and control characters are refused before parsing, because
 * browsers read them differently from URL parsers (`/\evil.example`).
 */
export function returnToOrRefuse (returnTo: string | undefined, apiOrigin: string, allowedOrigins: readonly string[]): string {
  if (returnTo === undefined) return `${apiOrigin}/`
  // eslint-disable-next-line no-control-regex
  if (returnTo === '' || /[\\\u0000-\u001f\u007f]/.test(returnTo) || returnTo.startsWith('//')) throw new InvalidReturnToError()
  let url: URL
  try {
    url = returnTo.startsWith('/') ? new URL(returnTo, apiOrigin) : new URL(returnTo)
  } catch {
    throw new InvalidReturnToError()
  }
  if (url.username !== '' || url.password !== '') throw new InvalidReturnToError()
  if (url.origin !== apiOrigin && !allowedOrigins.includes(url.origin)) throw new InvalidReturnToError()
  return url.href
}

/**
 * Whether an error of openid-client means the provider could not be reached or failed (not that it
 * refused): no answer in time, no connection, or a 5xx from it (or a gateway before it).
 */
function unreachable (err: unknown): boolean {
  const { name, code, message, status, cause } = err as { name?: string, code?: string, message?: string, status?: unknown, cause?: unknown }
  const answered = typeof status === 'number' ? status : cause instanceof Response ? cause.status : 0
  return name === 'TimeoutError' || name === 'AbortError' || code === 'OAUTH_TIMEOUT' || answered >= 500 ||
    (err instanceof TypeError && message === 'fetch failed')
}

function sameText (a: string, b: string): boolean {
  const left = Buffer.from(a)
  const right = Buffer.from(b)
  return left.length === right.length && timingSafeEqual(left, right)
}

/** After a failed discovery, sign-ins through that provider answer 503 at once for this long. */
const DISCOVERY_RETRY_MS = 5000

export interface OidcSignInOptions {
  /** a provider request not answered within this long is a 503 */
  fetchTimeoutMs?: number
}

/**
 * Signing in through a provider (OIDC_PROVIDERS_FILE, entries with a `clientId`), on openid-client:
 * the browser's authorization code flow with PKCE (S256), state and nonce kept in the store for one
 * use; and a mobile app's ID token, verified by the provider's keys (ExternalTokens). Both end in
 * the identity a provider vouched for; linking it to an account and starting our session is the
 * caller's (UserDirectory.linkExternal, TokenService.startExternalSession).
 */
export class OidcSignIn {
  readonly #providers = new Map<string, OidcProviderConfig>()
  readonly #configurations = new Map<string, Promise<client.Configuration>>()
  /** when each provider's last discovery failed: until DISCOVERY_RETRY_MS later, a 503 without asking again */
  readonly #discoveryFailedAt = new Map<string, number>()
  readonly #store: AuthStore
  readonly #externalTokens: ExternalTokens
  readonly #fetchTimeoutMs: number

  constructor (providers: OidcProviderConfig[], store: AuthStore, externalTokens: ExternalTokens, options: OidcSignInOptions = {}) {
    for (const provider of providers) if (provider.clientId !== undefined) this.#providers.set(provider.name, provider)
    this.#store = store
    this.#externalTokens = externalTokens
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? 1000
  }

  /** The provider users sign in through under this name; UnknownProviderError (404) otherwise. */
  provider (name: string): OidcProviderConfig {
    const provider = this.#providers.get(name)
    if (provider === undefined) throw new UnknownProviderError()
    return provider
  }

  /**
   * Starts a browser sign-in: the provider's authorization URL, and the state the browser must
   * present again at the callback (in a cookie of its own). State, nonce and PKCE verifier stay in
   * the store, under the state's hash, for SIGN_IN_ATTEMPT_TTL_MS and one use.
   */
  async start (provider: OidcProviderConfig, request: { redirectUri: string, returnTo: string, deadline?: RequestDeadline }): Promise<{ url: URL, state: string }> {
    const configuration = await this.#configuration(provider)
    const state = client.randomState()
    const attempt: SignInAttempt = { provider: provider.name, verifier: client.randomPKCECodeVerifier(), nonce: client.randomNonce(), returnTo: request.returnTo, redirectUri: request.redirectUri }
    await this.#store.holdSignInAttempt(sha256(state), JSON.stringify(attempt), SIGN_IN_ATTEMPT_TTL_MS, request.deadline?.at)
    const url = client.buildAuthorizationUrl(configuration, {
      response_type: 'code',
      scope: 'openid profile email',
      redirect_uri: attempt.redirectUri,
      state,
      nonce: attempt.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(attempt.verifier),
      code_challenge_method: 'S256',
    })
    return { url, state }
  }

  /**
   * Ends a browser sign-in at its callback: `query` is what the provider sent back, `boundState`
   * the state cookie /start set in this browser. The attempt is spent whatever happens next.
   * SignInError (4xx) for a bad state, an error from the provider or a refused exchange;
   * ProviderUnavailableError (503) when the provider cannot be reached.
   */
  async finish (provider: OidcProviderConfig, request: { query: URLSearchParams, boundState: string | undefined, deadline?: RequestDeadline }): Promise<{ identity: ExternalIdentity, returnTo: string }> {
    const state = request.query.get('state')
    if (state === null || state === '' || state.length > 512) throw invalidState('missing state')
    const held = await this.#store.takeSignInAttempt(sha256(state), request.deadline?.at)
    if (held === null) throw invalidState('unknown, expired or used state')
    // Bound to the browser that started it: someone else's callback URL, handed over, fails here.
    if (request.boundState === undefined || !sameText(request.boundState, state)) throw invalidState('state not bound to this browser')
    const attempt = JSON.parse(held) as SignInAttempt
    if (attempt.provider !== provider.name) throw invalidState('state of another provider')
    const error = request.query.get('error')
    if (error !== null) {
      const named = /^[A-Za-z0-9_.-]{1,64}$/.test(error) ? error : 'error'
      throw new SignInError(400, 'PROVIDER_ERROR', `The identity provider ended the sign-in (${named})`, `provider error: ${named}`)
    }
    const configuration = await this.#configuration(provider)
    const currentUrl = new URL(attempt.redirectUri)
    currentUrl.search = request.query.toString()
    let claims: Record<string, unknown>
    try {
      const tokens = await client.authorizationCodeGrant(configuration, currentUrl, {
        pkceCodeVerifier: attempt.verifier,
        expectedState: state,
        expectedNonce: attempt.nonce,
        idTokenExpected: true,
      })
      // openid-client checked the ID token's claims (iss, aud, azp, exp, nonce); its signature it leaves to
      // TLS (OIDC Core 3.1.3.7). Ours checks that too, by the provider's keys and algorithm list.
      const verified = await this.#externalTokens.verifyIdToken(tokens.id_token ?? '', provider, attempt.nonce)
      claims = { ...verified.claims }
      // Roles from the ID token, else from userinfo (some providers put them only there).
      const userinfoEndpoint = configuration.serverMetadata().userinfo_endpoint
      if (!(provider.rolesClaim in claims) && userinfoEndpoint !== undefined && tokens.access_token !== undefined) {
        const userinfo = await client.fetchUserInfo(configuration, tokens.access_token, String(claims.sub))
        claims = { ...userinfo, ...claims }
      }
    } catch (err) {
      if (err instanceof ProviderUnavailableError) throw err
      if (unreachable(err)) throw new ProviderUnavailableError(err)
      if (err instanceof ExternalTokenRefusedError) throw new SignInError(401, 'SIGN_IN_FAILED', 'The identity provider\'s answer could not be verified; start again', `id token refused: ${err.reason}`)
      const { code, error: oauthError } = err as { code?: string, error?: string }
      throw new SignInError(401, 'SIGN_IN_FAILED', 'The identity provider\'s answer could not be verified; start again', `exchange refused: ${oauthError ?? code ?? 'invalid'}`)
    }
    return { identity: identityOf(provider, claims), returnTo: attempt.returnTo }
  }

  /**
   * A mobile app's sign-in: the ID token the provider gave it, verified by the provider's keys
   * (aud = our clientId; with `nonce`, the token must carry it). 401 / 503 as ExternalTokens says.
   */
  async exchangeIdToken (provider: OidcProviderConfig, idToken: string, nonce?: string): Promise<ExternalIdentity> {
    try {
      return await this.#externalTokens.verifyIdToken(idToken, provider, nonce)
    } catch (err) {
      if (err instanceof ExternalTokenRefusedError) throw new SignInError(401, 'INVALID_ID_TOKEN', 'The ID token is invalid', `id token refused: ${err.reason}`)
      throw err
    }
  }

  /** The provider's discovered configuration; fetched once, again after a failure (a 503 meanwhile). */
  #configuration (provider: OidcProviderConfig): Promise<client.Configuration> {
    let configuration = this.#configurations.get(provider.name)
    if (configuration === undefined) {
      // A provider that is down is asked again at most every few seconds, not by every /start.
      if (Date.now() - (this.#discoveryFailedAt.get(provider.name) ?? -Infinity) < DISCOVERY_RETRY_MS) {
        return Promise.reject(new ProviderUnavailableError(new Error('its discovery failed moments ago')))
      }
      const issuer = new URL(provider.issuer)
      configuration = client.discovery(
        issuer,
        provider.clientId!,
        provider.clientSecret,
        provider.clientSecret === undefined ? client.None() : client.ClientSecretBasic(provider.clientSecret),
        {
          timeout: Math.max(1, Math.ceil(this.#fetchTimeoutMs / 1000)),
          // Production refuses http issuers at start-up; elsewhere one is allowed (a local provider).
          ...(issuer.protocol === 'http:' ? { execute: [client.allowInsecureRequests] } : {}),
        }
      ).catch((err: unknown) => {
        this.#configurations.delete(provider.name)
        this.#discoveryFailedAt.set(provider.name, Date.now())
        throw new ProviderUnavailableError(err)
      })
      this.#configurations.set(provider.name, configuration)
    }
    return configuration
  }
}
