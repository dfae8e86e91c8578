import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/**
 * The security events operators alert on. The names are a stable interface: dashboards and
 * alerts match on the `event` field, so rename nothing without a migration note.
 */
export type AuditEvent =
  | 'login_succeeded'
  | 'login_failed'
  | 'token_refreshed'
  | 'refresh_replayed'
  | 'refresh_failed'
  | 'refresh_token_reused'
  | 'logged_out'
  | 'rate_limited'
  | 'csrf_refused'
  | 'cookie_tossing'
  | 'session_revoked'
  | 'password_changed'
  | 'access_token_revoked'
  | 'external_token_refused'
  | 'oidc_login_succeeded'
  | 'oidc_login_failed'

/** Fields an audit line may carry: identifiers only, never a token, a password or a hash of one. */
export interface AuditFields {
  userId?: string | undefined
  sessionId?: string | undefined
  sessionIds?: string[]
  /** a login's: the account's oldest sessions, ended to keep it within SESSIONS_PER_USER_MAX */
  endedSessionIds?: string[]
  /** what an unproven token says of itself (an invalid refresh token can name anyone) */
  claimedUserId?: string | undefined
  claimedSessionId?: string | undefined
  limit?: string
  /** the client IP a limit counted (as the limiter saw it, through trusted proxies) */
  ip?: string
  origin?: string
  /** names of token cookies a request carried more than once (never their values) */
  cookies?: string[]
  /** session_revoked: who ended them — the user, an admin, a password change, RFC 7009 revocation */
  by?: 'self' | 'admin' | 'password_change' | 'revoke_endpoint'
  /** session_revoked by an admin: the admin's user id */
  adminId?: string
  /** external_token_refused: the provider's issuer, and why (a check's name, never the token) */
  issuer?: string
  /** external_token_refused, oidc_login_failed: why (never a token, a code or a state) */
  reason?: string
  /** oidc_login_*: the provider's name (OIDC_PROVIDERS_FILE) */
  provider?: string
}

const WARNINGS = new Set<AuditEvent>(['refresh_token_reused', 'rate_limited', 'csrf_refused', 'cookie_tossing'])

const MESSAGES: Record<AuditEvent, string> = {
  login_succeeded: 'login succeeded',
  login_failed: 'login failed',
  token_refreshed: 'tokens refreshed',
  refresh_replayed: 'a just-spent refresh token came back within the grace window: answered with its successor',
  refresh_failed: 'refresh refused',
  refresh_token_reused: 'a spent refresh token came back: its session is revoked',
  logged_out: 'logged out',
  rate_limited: 'rate limit exceeded',
  csrf_refused: 'cross-site cookie request refused',
  cookie_tossing: 'a token cookie came twice (planted by another site?): refused',
  session_revoked: 'sessions ended',
  password_changed: 'password changed',
  access_token_revoked: 'an access token was revoked (RFC 7009); its session lives on',
  external_token_refused: 'an access token of a trusted provider was refused (reported once a minute per issuer and reason)',
  oidc_login_succeeded: 'signed in through an identity provider',
  oidc_login_failed: 'a sign-in through an identity provider failed',
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Writes one structured audit line `{event, ...fields}` through the request's logger (so with its reqId). */
    audit (event: AuditEvent, fields?: AuditFields): void
  }
}

/** Audit events as pino lines with a stable `event` field, on the request's logger. */
export default fp(async function audit (fastify) {
  fastify.decorateRequest('audit', function (this: FastifyRequest, event: AuditEvent, fields: AuditFields = {}) {
    const line = { event, ...fields }
    if (WARNINGS.has(event)) this.log.warn(line, MESSAGES[event])
    else this.log.info(line, MESSAGES[event])
  })
}, { name: 'audit' })
