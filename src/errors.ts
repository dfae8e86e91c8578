/**
 * Errors the core raises. Each carries the HTTP status it maps to, so the error handler can answer
 * without the core knowing anything about HTTP beyond that number.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError'
  readonly statusCode = 503
  readonly code = 'STORE_UNAVAILABLE'
  /** true when whoever raised it has logged the outage already (the error handler then need not) */
  readonly reported: boolean
  constructor (cause?: unknown, options: { reported?: boolean } = {}) {
    super('The token store is unavailable; try again shortly', { cause })
    this.reported = options.reported ?? false
  }
}

/** Access token missing, malformed, expired, forged or revoked. */
export class InvalidAccessTokenError extends Error {
  override name = 'InvalidAccessTokenError'
  readonly statusCode = 401
  readonly code = 'INVALID_ACCESS_TOKEN'
  /** false when no token was presented at all (RFC 6750: no error attribute then) */
  readonly presented: boolean
  constructor (message: string, presented = true) {
    super(message)
    this.presented = presented
  }
}

export class InvalidRefreshTokenError extends Error {
  override name = 'InvalidRefreshTokenError'
  readonly statusCode = 401
  readonly code = 'INVALID_REFRESH_TOKEN'
  /** 'reused': a spent token came back and its session was revoked (for the audit log) */
  readonly reason: 'invalid' | 'reused'
  /** the user and session the token names, when it is well-formed (for the audit log) */
  readonly userId: string | undefined
  readonly sessionId: string | undefined
  constructor (reason: 'invalid' | 'reused' = 'invalid', named: { userId?: string, sessionId?: string } = {}) {
    // One message for every cause: a client must not learn which tokens once existed.
    super('The refresh token is invalid, expired, spent or revoked')
    this.reason = reason
    this.userId = named.userId
    this.sessionId = named.sessionId
  }
}

export class InvalidCredentialsError extends Error {
  override name = 'InvalidCredentialsError'
  readonly statusCode = 401
  readonly code = 'INVALID_CREDENTIALS'
  /** the id the username would have, existing or not (for the audit log) */
  readonly userId: string
  constructor (userId: string) {
    super('Invalid username or password')
    this.userId = userId
  }
}

export class InsufficientRoleError extends Error {
  override name = 'InsufficientRoleError'
  readonly statusCode = 403
  readonly code = 'INSUFFICIENT_ROLE'
  constructor (role: string) {
    super(`This resource requires the role '${role}'`)
  }
}
