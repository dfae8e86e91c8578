import { createPublicKey } from 'node:crypto'
import type { SignerOptions, VerifierOptions } from 'fast-jwt'
import type { Config } from '../config.js'
import { AccessTokenExpiredError, InvalidAccessTokenError } from '../errors.js'

/** RFC 9068 media type of JWT access tokens, written in the header and required on verify. */
export const ACCESS_TOKEN_TYPE = 'at+jwt'
/** Longer "tokens" are rejected before any parsing. */
export const ACCESS_TOKEN_MAX_LENGTH = 4096

/** What the service puts in a token; `iat`, `exp`, `iss`, `aud` are added by the signer. */
export interface AccessTokenPayload {
  sub: string
  roles: string[]
  sid: string
  jti: string
  /** the account's store epoch (src/store/types.ts); absent on tokens issued before epochs */
  epoch?: string
}

export interface AccessTokenClaims extends AccessTokenPayload {
  iat: number
  exp: number
  iss: string
  aud: string
}

/** A signer/verifier pair as fast-jwt makes them (and @fastify/jwt exposes them). */
export interface JwtFunctions {
  /** `lifetime` (seconds): shorter than the configured one, for a token that must not outlive its session */
  sign (payload: AccessTokenPayload, lifetime?: number): string
  verify (token: string): unknown
  /** the same checks but the expiry: tells an expired token from an invalid one */
  verifyIgnoringExpiry (token: string): unknown
}

/**
 * The single seam of access-token verification. Today one HS256 key; later more key sources
 * (asymmetric keys by `kid`, JWKS of external OpenID providers) plug in behind `verify`.
 */
export interface AccessTokenCodec {
  /** `lifetime` (seconds): at most ACCESS_TOKEN_TTL; unset: ACCESS_TOKEN_TTL */
  sign (payload: AccessTokenPayload, lifetime?: number): string
  /** Claims of a valid token; throws InvalidAccessTokenError otherwise. Never consults the denylist. */
  verify (token: string): AccessTokenClaims
}

/**
 * Options for @fastify/jwt (and fast-jwt, whose option names it shares): algorithm, issuer,
 * audience and type pinned on both sides. Verified tokens are cached by the codec, not by fast-jwt.
 */
export interface AccessTokenJwtOptions {
  /** HS256: the secret; otherwise the key pair, in PEM */
  secret: Buffer | { private: string, public: string }
  sign: Partial<SignerOptions>
  verify: Partial<VerifierOptions>
}

export function accessTokenJwtOptions (config: Pick<Config, 'jwt' | 'accessTokenTtl'>, kid: string): AccessTokenJwtOptions {
  const { algorithm, privateKey } = config.jwt
  return {
    secret: privateKey === undefined
      ? config.jwt.secret
      : { private: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, public: createPublicKey(privateKey).export({ format: 'pem', type: 'spki' }) as string },
    sign: {
      algorithm,
      iss: config.jwt.issuer,
      aud: config.jwt.audience,
      // A string is read as a duration by both @fastify/jwt (numbers: seconds) and fast-jwt (numbers: ms).
      expiresIn: `${config.accessTokenTtl}s`,
      header: { alg: algorithm, typ: ACCESS_TOKEN_TYPE, kid },
    },
    verify: {
      algorithms: [algorithm],
      allowedIss: config.jwt.issuer,
      allowedAud: config.jwt.audience,
      checkTyp: ACCESS_TOKEN_TYPE,
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp', 'iss', 'aud'],
    },
  }
}

/** Tolerated clock skew between instances for `iat`, in seconds. */
const IAT_SKEW_SECONDS = 30
/** Verified tokens remembered at most (about 7 MB when full); the oldest is forgotten first. */
export const VERIFIED_TOKENS_CACHED = 10_000

/**
 * Tokens that passed every check, by their exact text, each until its `exp`: a client presents the
 * same token for its whole life, and a second verification of the same bytes can only agree with the
 * first (every check but the expiry is fixed by the bytes; the `iat` check only grows easier with
 * time). fast-jwt's own cache keys each lookup by a SHA-256 of the token, which cost 4 % of a
 * protected request's CPU; a key of our own choosing there makes it warn at every start-up.
 */
class VerifiedTokens {
  readonly #claims = new Map<string, AccessTokenClaims>()

  get (token: string, nowMs: number): AccessTokenClaims | undefined {
    const claims = this.#claims.get(token)
    if (claims === undefined || nowMs < claims.exp * 1000) return claims
    this.#claims.delete(token)
    return undefined
  }

  add (token: string, claims: AccessTokenClaims): void {
    if (this.#claims.size >= VERIFIED_TOKENS_CACHED) this.#claims.delete(this.#claims.keys().next().value as string)
    // Shared by every request presenting the token: nobody may change it.
    Object.freeze(claims.roles)
    this.#claims.set(token, Object.freeze(claims))
  }
}

/**
 * `lifetime`: the access-token TTL. A token claiming a longer life, or issued in the future, was not
 * made by this service (or was made with a leaked key): it is refused however well it is signed.
 */
export function accessTokenCodec (jwt: JwtFunctions, lifetime: number, now: () => number = Date.now): AccessTokenCodec {
  const verified = new VerifiedTokens()
  return {
    sign: (payload, shorter) => jwt.sign(payload, shorter === undefined || shorter >= lifetime ? undefined : Math.max(1, Math.floor(shorter))),
    verify (token) {
      const known = verified.get(token, now())
      if (known !== undefined) return known
      if (token.length > ACCESS_TOKEN_MAX_LENGTH) throw new InvalidAccessTokenError('The access token is invalid')
      let claims: unknown
      try {
        claims = jwt.verify(token)
      } catch (err) {
        if ((err as { code?: string }).code !== 'FAST_JWT_EXPIRED') throw new InvalidAccessTokenError('The access token is invalid')
        // fast-jwt may report the expiry before other claims: "expired" only for a token whose
        // signature and every other claim hold (a forged or foreign expired token is just invalid).
        throw ourClaims(verifiedOrNull(() => jwt.verifyIgnoringExpiry(token)), lifetime, now) === null
          ? new InvalidAccessTokenError('The access token is invalid')
          : new AccessTokenExpiredError()
      }
      const ours = ourClaims(claims, lifetime, now)
      if (ours === null) throw new InvalidAccessTokenError('The access token is invalid')
      verified.add(token, ours)
      return ours
    },
  }
}

function verifiedOrNull (verify: () => unknown): unknown {
  try {
    return verify()
  } catch {
    return null
  }
}

/**
 * The claims when they are ours: our claim shapes, a lifetime no longer than `lifetime`, issued no
 * later than now (with skew). A token claiming a longer life, or issued in the future, was not made
 * by this service (or was made with a leaked key): it is refused however well it is signed.
 */
function ourClaims (claims: unknown, lifetime: number, now: () => number): AccessTokenClaims | null {
  if (!hasAccessClaimShapes(claims)) return null
  if (claims.exp - claims.iat > lifetime || claims.iat > now() / 1000 + IAT_SKEW_SECONDS) return null
  return claims
}

/** Signature and registered claims are fast-jwt's job; this checks the shapes of our own claims. */
function hasAccessClaimShapes (claims: unknown): claims is AccessTokenClaims {
  if (typeof claims !== 'object' || claims === null) return false
  const c = claims as Partial<AccessTokenClaims>
  return typeof c.sub === 'string' && typeof c.sid === 'string' && typeof c.jti === 'string' &&
    (c.epoch === undefined || typeof c.epoch === 'string') &&
    typeof c.iat === 'number' && typeof c.exp === 'number' &&
    Array.isArray(c.roles) && c.roles.every(role => typeof role === 'string')
}
