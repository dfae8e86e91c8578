import { ApiError } from './errors.js'
import type { AccessTokenClaims } from './tokens/access-token.js'

/**
 * Who a protected request acts for, whichever verifier vouched for its token: our own access tokens
 * today, an external provider's (OIDC_PROVIDERS_FILE) as that work lands. Routes read this, never a
 * token's claims, so they need not know who issued it.
 */
export interface Principal {
  /** the token's issuer: our JWT_ISSUER, or a trusted provider's `iss` */
  readonly issuer: string
  /** the user's id here (a profile's `id`); for our own tokens, their `sub` */
  readonly id: string
  /** the token's `sub` as its issuer wrote it */
  readonly subject: string
  /** frozen */
  readonly roles: string[]
  /** our own tokens only: the session the token belongs to, its id (`jti`) and expiry (`exp`, seconds) */
  readonly session: { readonly id: string, readonly tokenId: string, readonly expiresAt: number } | undefined
}

/** The principal of one of our own access tokens (already verified). */
export function ownPrincipal (claims: AccessTokenClaims): Principal {
  return Object.freeze({
    issuer: claims.iss,
    id: claims.sub,
    subject: claims.sub,
    roles: claims.roles,
    session: Object.freeze({ id: claims.sid, tokenId: claims.jti, expiresAt: claims.exp }),
  })
}

/** A route about our sessions (list, end, password) called with a token that has none of ours. */
export class OwnSessionRequiredError extends ApiError {
  constructor () {
    super(403, 'OWN_SESSION_REQUIRED', 'This route needs an access token of this API (an external token has no session here)')
  }
}

/** The session of a principal that must have one of ours; OwnSessionRequiredError otherwise. */
export function ownSession (principal: Principal): NonNullable<Principal['session']> {
  if (principal.session === undefined) throw new OwnSessionRequiredError()
  return principal.session
}
