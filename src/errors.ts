/**
 * An error the API answers with on purpose: the HTTP status it maps to, a stable code and a message
 * written for the client. The error handler sends these as they are, 5xx included; any other error
 * that reaches it is a bug and leaves as a bare 500. The core raises them knowing nothing of HTTP
 * beyond that number; plugins raise their own.
 */
export class ApiError extends Error {
  override name = this.constructor.name
  readonly statusCode: number
  readonly code: string
  /** seconds after which a retry may succeed: sent as `Retry-After` */
  readonly retryAfter: number | undefined
  constructor (statusCode: number, code: string, message: string, options?: ErrorOptions) {
    super(message, options)
    this.statusCode = statusCode
    this.code = code
  }
}

export class StoreUnavailableError extends ApiError {
  override readonly retryAfter = 1
  /** true when whoever raised it has logged the outage already (the error handler then need not) */
  readonly reported: boolean
  constructor (cause?: unknown, options: { reported?: boolean } = {}) {
    super(503, 'STORE_UNAVAILABLE', 'The token store is unavailable; try again shortly', { cause })
    this.reported = options.reported ?? false
  }
}

/** Access token missing, malformed, forged or revoked: the client should sign out. */
export class InvalidAccessTokenError extends ApiError {
  /** false when no token was presented at all (RFC 6750: no error attribute then) */
  readonly presented: boolean
  constructor (message: string, presented = true, code = 'INVALID_ACCESS_TOKEN') {
    super(401, code, message)
    this.presented = presented
  }
}

/** An access token that is valid in every respect but its expiry: the client should refresh. */
export class AccessTokenExpiredError extends InvalidAccessTokenError {
  constructor () {
    super('The access token expired', true, 'ACCESS_TOKEN_EXPIRED')
  }
}

export class InvalidRefreshTokenError extends ApiError {
  /** 'reused': a spent token came back and its session was revoked (for the audit log) */
  readonly reason: 'invalid' | 'reused'
  /** the user and session the token names, when it is well-formed (for the audit log) */
  readonly userId: string | undefined
  readonly sessionId: string | undefined
  constructor (reason: 'invalid' | 'reused' = 'invalid', named: { userId?: string, sessionId?: string } = {}) {
    // One message for every cause: a client must not learn which tokens once existed.
    super(401, 'INVALID_REFRESH_TOKEN', 'The refresh token is invalid, expired, spent or revoked')
    this.reason = reason
    this.userId = named.userId
    this.sessionId = named.sessionId
  }
}

export class InvalidCredentialsError extends ApiError {
  /** the id the username would have, existing or not (for the audit log) */
  readonly userId: string
  constructor (userId: string) {
    super(401, 'INVALID_CREDENTIALS', 'Invalid username or password')
    this.userId = userId
  }
}

export class InsufficientRoleError extends ApiError {
  constructor (role: string) {
    super(403, 'INSUFFICIENT_ROLE', `This resource requires the role '${role}'`)
  }
}

/** Not one of the caller's live sessions — whose it is, or whether it ever existed, is not said. */
export class SessionNotFoundError extends ApiError {
  constructor () {
    super(404, 'SESSION_NOT_FOUND', 'No such session')
  }
}

/** A password change for an account that signs in through an OpenID provider: it has none here. */
export class NoPasswordError extends ApiError {
  constructor () {
    super(403, 'NO_PASSWORD', 'This account signs in through an identity provider and has no password here')
  }
}

/** A password change whose `current_password` is wrong: 403, so that no client takes it for a dead session. */
export class InvalidCurrentPasswordError extends ApiError {
  constructor () {
    super(403, 'INVALID_CURRENT_PASSWORD', 'The current password is wrong')
  }
}
