import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose'
import { ApiError, InvalidAccessTokenError } from '../errors.js'
import { externalUserId } from '../ids.js'
import type { OidcProviderConfig } from './providers.js'

/** A provider's discovery or keys could not be fetched in time: the token can be neither accepted nor refused. */
export class ProviderUnavailableError extends ApiError {
  override readonly retryAfter = 1
  constructor (cause?: unknown) {
    super(503, 'PROVIDER_UNAVAILABLE', 'The identity provider cannot be reached; try again shortly', { cause })
  }
}

/** Why an external token was refused, for the audit line (never the token). */
export class ExternalTokenRefusedError extends InvalidAccessTokenError {
  readonly issuer: string
  readonly reason: string
  constructor (issuer: string, reason: string) {
    super('The access token is invalid')
    this.issuer = issuer
    this.reason = reason
  }
}

export interface ExternalIdentity {
  provider: OidcProviderConfig
  /** the user's id here: stable for (issuer, sub), never a local user's (those are 22 base64url characters) */
  id: string
  subject: string
  username: string
  email: string | null
  roles: string[]
  claims: JWTPayload
}

export interface ExternalTokenOptions {
  /** a discovery document or JWKS not fetched within this long is a 503 */
  fetchTimeoutMs?: number
  /** an unknown `kid` fetches the JWKS again only if the last fetch (or attempt) is at least this old */
  refetchAfterMs?: number
  /** seconds of clock skew allowed on exp and nbf */
  leewaySeconds?: number
}

/** Google writes its issuer with and without the scheme (https://developers.google.com/identity/openid-connect/openid-connect#validatinganidtoken). */
const GOOGLE_ISSUERS = ['https://accounts.google.com', 'accounts.google.com']

/** The `iss` values a provider's tokens may carry. */
export function acceptedIssuers (provider: OidcProviderConfig): string[] {
  const issuer = provider.issuer.replace(/\/$/, '')
  return GOOGLE_ISSUERS.includes(issuer) ? GOOGLE_ISSUERS : [provider.issuer]
}

interface Keys {
  jwksUri: string | undefined
  keySet: ReturnType<typeof createLocalJWKSet> | undefined
  kids: Set<string>
  /** when the JWKS was last fetched or tried (ms) */
  attemptedAt: number
  /** the last try failed: until the next is due, a token that needs a fetch gets 503, not 401 */
  failed: boolean
  fetching: Promise<void> | undefined
}

/**
 * Verifies access tokens that trusted providers issued (OIDC_PROVIDERS_FILE, those with an
 * `audience`): the token's `iss` picks the provider, its `kid` the key from that provider's JWKS,
 * found through its discovery document. Keys are cached; an unknown `kid` fetches the JWKS again
 * at most every refetchAfterMs (a flood of made-up kids costs the provider one request per window),
 * and keys already fetched stay usable while the provider is down. jose verifies (alg pinned to the
 * provider's list and to the key, iss, aud, exp/nbf with leeway); fetching is ours, because jose's
 * remote set neither rate-limits failed fetches nor keeps its keys through an outage.
 */
export class ExternalTokens {
  readonly #byIssuer = new Map<string, OidcProviderConfig>()
  readonly #keys = new Map<string, Keys>()
  readonly #fetchTimeoutMs: number
  readonly #refetchAfterMs: number
  readonly #leewaySeconds: number

  constructor (providers: OidcProviderConfig[], options: ExternalTokenOptions = {}) {
    for (const provider of providers) {
      if (provider.audience === undefined && provider.clientId === undefined) continue
      // Only providers with an audience issue access tokens we accept; sign-in ones ID tokens.
      if (provider.audience !== undefined) for (const issuer of acceptedIssuers(provider)) this.#byIssuer.set(issuer, provider)
      this.#keys.set(provider.name, { jwksUri: undefined, keySet: undefined, kids: new Set(), attemptedAt: -Infinity, failed: false, fetching: undefined })
    }
    this.#fetchTimeoutMs = options.fetchTimeoutMs ?? 1000
    this.#refetchAfterMs = options.refetchAfterMs ?? 10_000
    this.#leewaySeconds = options.leewaySeconds ?? 60
  }

  /** Whether any provider's access tokens are accepted. */
  get enabled (): boolean {
    return this.#byIssuer.size > 0
  }

  /** The provider whose issuer the token names, unverified (which verifier to ask), or undefined. */
  providerOf (token: string): OidcProviderConfig | undefined {
    if (this.#byIssuer.size === 0) return undefined
    let issuer: unknown
    try {
      issuer = decodeJwt(token).iss
    } catch {
      return undefined
    }
    return typeof issuer === 'string' ? this.#byIssuer.get(issuer) : undefined
  }

  /** Verifies an access token as `provider`'s; ExternalTokenRefusedError (401) or ProviderUnavailableError (503). */
  async verify (token: string, provider: OidcProviderConfig): Promise<ExternalIdentity> {
    return identityOf(provider, await this.#verifyJwt(token, provider, provider.audience, ['jwt', 'at+jwt']))
  }

  /**
   * Verifies an ID token `provider` issued to our client (a mobile app's sign-in): signature by its
   * JWKS, iss, aud = clientId (and azp when there are several audiences), exp; with `nonce`, the
   * token must carry it. The same errors as verify().
   */
  async verifyIdToken (token: string, provider: OidcProviderConfig, nonce?: string): Promise<ExternalIdentity> {
    // A JWT access token (typ at+jwt) is not an ID token, whatever its aud says.
    const claims = await this.#verifyJwt(token, provider, provider.clientId, ['jwt', undefined])
    const refuse = (reason: string) => new ExternalTokenRefusedError(provider.issuer, reason)
    if (Array.isArray(claims.aud) && claims.aud.length > 1 && claims.azp !== provider.clientId) throw refuse('azp')
    if (nonce !== undefined && claims.nonce !== nonce) throw refuse('nonce')
    return identityOf(provider, claims)
  }

  async #verifyJwt (token: string, provider: OidcProviderConfig, audience: string | undefined, typs: Array<string | undefined>): Promise<JWTPayload> {
    const refuse = (reason: string) => new ExternalTokenRefusedError(provider.issuer, reason)
    if (audience === undefined) throw refuse('audience')
    let header: ReturnType<typeof decodeProtectedHeader>
    try {
      header = decodeProtectedHeader(token)
    } catch {
      throw refuse('malformed')
    }
    const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : undefined
    if (!typs.includes(typ)) throw refuse('typ')
    if (typeof header.alg !== 'string' || !(provider.algorithms as string[]).includes(header.alg)) throw refuse('alg')
    if (typeof header.kid !== 'string' || header.kid === '') throw refuse('kid')
    const keys = this.#keys.get(provider.name)
    if (keys === undefined) throw refuse('issuer')
    if (!keys.kids.has(header.kid)) {
      // Unknown key: fetched again only when the last try is old enough; a fetch that fails with no
      // key to go on is a 503 (the token may be good), an unknown kid with no fetch due a 401.
      if (Date.now() - keys.attemptedAt < this.#refetchAfterMs && keys.fetching === undefined) {
        throw keys.failed ? new ProviderUnavailableError(new Error('the last fetch of its keys failed')) : refuse('unknown kid')
      }
      await this.#refresh(provider, keys)
      if (!keys.kids.has(header.kid)) throw refuse('unknown kid')
    }
    try {
      const { payload } = await jwtVerify(token, keys.keySet!, {
        issuer: acceptedIssuers(provider),
        audience,
        algorithms: provider.algorithms,
        clockTolerance: this.#leewaySeconds,
        requiredClaims: ['sub', 'exp'],
      })
      return payload
    } catch (err) {
      throw refuse((err as { code?: string }).code ?? 'invalid')
    }
  }

  /** Fetches discovery (once) and the JWKS; one fetch at a time per provider; keeps the old keys on failure. */
  async #refresh (provider: OidcProviderConfig, keys: Keys): Promise<void> {
    keys.fetching ??= (async () => {
      keys.attemptedAt = Date.now()
      // One bound for discovery and JWKS together: a token that needs both waits at most this long.
      const signal = AbortSignal.timeout(this.#fetchTimeoutMs)
      try {
        keys.jwksUri ??= await this.#discover(provider, signal)
        const jwks = await this.#fetchJson(keys.jwksUri, signal) as { keys?: unknown }
        if (!Array.isArray(jwks.keys)) throw new Error('the JWKS has no keys array')
        keys.keySet = createLocalJWKSet(jwks as never)
        keys.kids = new Set(jwks.keys.map(key => (key as { kid?: unknown }).kid).filter((kid): kid is string => typeof kid === 'string'))
        keys.attemptedAt = Date.now()
        keys.failed = false
      } catch (err) {
        keys.failed = true
        throw err
      } finally {
        keys.fetching = undefined
      }
    })()
    try {
      await keys.fetching
    } catch (err) {
      throw new ProviderUnavailableError(err)
    }
  }

  async #discover (provider: OidcProviderConfig, signal: AbortSignal): Promise<string> {
    const document = await this.#fetchJson(`${provider.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, signal) as { issuer?: unknown, jwks_uri?: unknown }
    // The document must be the configured issuer's own (OpenID Connect Discovery 1.0, 4.3).
    if (document.issuer !== provider.issuer) throw new Error(`the discovery document names another issuer (${String(document.issuer)})`)
    if (typeof document.jwks_uri !== 'string' || !/^https?:\/\//.test(document.jwks_uri)) throw new Error('the discovery document has no jwks_uri')
    return document.jwks_uri
  }

  async #fetchJson (url: string, signal: AbortSignal): Promise<unknown> {
    const response = await fetch(url, { signal, redirect: 'error', headers: { accept: 'application/json' } })
    if (!response.ok) throw new Error(`${url} answered ${response.status}`)
    return await response.json()
  }
}

/** The identity a verified external token names: id, username, email, roles (defaults plus the mapped claim). */
export function identityOf (provider: OidcProviderConfig, claims: JWTPayload): ExternalIdentity {
  const subject = String(claims.sub)
  const text = (value: unknown) => typeof value === 'string' && value !== '' ? value : undefined
  const email = text(claims.email) ?? null
  const raw = claims[provider.rolesClaim]
  const external = Array.isArray(raw) ? raw.filter((role): role is string => typeof role === 'string') : typeof raw === 'string' ? raw.split(' ').filter(role => role !== '') : []
  const mapped = provider.roleMap === undefined ? external : external.flatMap(role => Object.hasOwn(provider.roleMap!, role) ? [provider.roleMap![role] as string] : [])
  return {
    provider,
    id: externalUserId(provider.issuer, subject),
    subject,
    username: text(claims.preferred_username) ?? email ?? subject,
    email,
    roles: [...new Set([...provider.defaultRoles, ...mapped])],
    claims,
  }
}
