/** A user account as the store keeps it. `passwordHash` never leaves the core. */
export interface StoredUser {
  id: string
  username: string
  email: string | null
  roles: string[]
  passwordHash: string
  /**
   * The account's store epoch: a random id written with the account, carried by its access tokens.
   * A store that lost its data recreates the account with another, so no token from before the loss
   * (revoked or not) is accepted again. Absent on an account created before epochs.
   */
  epoch?: string
}

/** An account as an access check reads it: everything but the password hash and the epoch. */
export type AccountSummary = Omit<StoredUser, 'passwordHash' | 'epoch'>

/** An account that signs in through an OpenID provider (src/oidc): it has no password here. */
export type ExternalAccount = AccountSummary

/** How long a browser sign-in through a provider may take, from /start to its callback. */
export const SIGN_IN_ATTEMPT_TTL_MS = 10 * 60_000

/** What one access check found, in one read. */
export interface AccessState {
  /** the session or the access token is denied */
  denied: boolean
  /** (not denied) whether the account exists */
  accountExists?: boolean
  /** (not denied) the account's epoch; null when it has none (or does not exist) */
  epoch?: string | null
  /** when asked for (and not denied): the account, null when it no longer exists */
  account?: AccountSummary | null
}

/** How many spent refresh tokens of a session are remembered: presenting one of these revokes it. */
export const SPENT_TOKENS_KEPT = 32

/** Who used a session, as seen at its login or last refresh: null when absent. */
export interface SessionClient {
  /** the User-Agent header, cut to SESSION_USER_AGENT_MAX characters */
  userAgent: string | null
  /** the client's address (TRUST_PROXY decides, src/client-address.ts) */
  ip: string | null
}

/** User-Agent headers longer than this are cut before they are stored. */
export const SESSION_USER_AGENT_MAX = 256

/** A live session as a listing shows it; times are epoch ms. */
export interface SessionInfo extends SessionClient {
  id: string
  /** null for a session created before sessions recorded it */
  createdAt: number | null
  /** the last login or refresh; null for a session created before sessions recorded it */
  lastUsedAt: number | null
  /** when it ends unless refreshed (never past its absolute bound) */
  expiresAt: number
}

export interface NewSession {
  userId: string
  sessionId: string
  refreshHash: string
  /** when the session ends unless refreshed (the idle bound), epoch ms */
  expiresAt: number
  /** the absolute bound no refresh extends it past (SESSION_MAX_AGE from login), epoch ms; unset: expiresAt */
  maxExpiresAt?: number
  /** epoch ms; unset: now */
  createdAt?: number
  client?: SessionClient
  /**
   * The password hash the login verified: the session is created only if it is still the account's
   * (a password change that finished during the check wins; its caller ends every other session).
   */
  passwordHash?: string
  /** the account's live sessions are at most this many: creating one more ends the oldest */
  maxSessionsPerUser: number
  /** how long access tokens of an ended session may still be alive: its sid stays denied that long */
  accessTokenTtl: number
}

export interface RefreshPresentation {
  userId: string
  sessionId: string
  /** SHA-256 of the presented refresh token */
  presentedHash: string
}

/** The token a rotation issues, and what a replay of the presented token within the grace window gets. */
export interface NextRefreshToken {
  /** SHA-256 of the successor */
  hash: string
  /** the successor sealed under the presented token (src/tokens/successor-seal.ts) */
  sealed: string
  /** how long a replay of the presented token is answered with this successor; 0: never (strict) */
  graceMs: number
  /** the epoch to give the account if it has none yet (created before epochs) */
  epoch?: string
  /**
   * The idle bound: the rotation extends the session to now + idleMs, never past its absolute bound.
   * Unset: the session keeps its expiry.
   */
  idleMs?: number
  /** who refreshed, recorded with the rotation (a replay records nothing) */
  client?: SessionClient
}

export type RotationOutcome =
  /** `roles`, `epoch`: the account's now, for the new access token; `expiresAt`: the session's new expiry */
  | { outcome: 'rotated', expiresAt: number, roles: string[], epoch: string }
  /** the token was spent within the grace window and its successor is still live: `sealed` is that successor */
  | { outcome: 'replayed', expiresAt: number, roles: string[], sealed: string, epoch: string }
  /** the token was already spent: the whole session has been revoked */
  | { outcome: 'reused' }
  /** unknown, expired or revoked session, a token that was never issued, or an account that is gone */
  | { outcome: 'invalid' }

export interface SessionRevocation {
  userId: string
  sessionId: string
  /** how long access tokens of the session may still be alive: the sid stays denied that long */
  accessTokenTtl: number
  /** an access token to deny by `jti` for its remaining lifetime (seconds) */
  accessToken?: { tokenId: string, ttl: number }
}

/**
 * The one interface behind which tokens, sessions, denylist and users live.
 * Implementations: Redis (shared by every instance) and in-memory (embedded, one process).
 * Every method either does what it says atomically or rejects with StoreUnavailableError.
 * `deadline` (epoch ms, src/deadline.ts): the caller's request gives up then, so a command still
 * unanswered at that time fails even within its own bound (and a rotation not yet run never runs).
 */
export interface AuthStore {
  readonly kind: 'redis' | 'memory'

  getUser (userId: string, deadline?: number): Promise<StoredUser | null>
  /** Creates the account unless one with this id exists; resolves true when it created it. */
  createUserIfAbsent (user: StoredUser): Promise<boolean>
  /** The account's epoch, given `epoch` first if it has none; null when there is no such account. */
  ensureEpoch (userId: string, epoch: string, deadline?: number): Promise<string | null>
  /**
   * Creates the account of an external identity (password hash '': no password matches it) or
   * updates its username, email and roles; resolves with its epoch (`epoch` when it is new).
   */
  saveExternalAccount (account: ExternalAccount, epoch: string, deadline?: number): Promise<string>
  /**
   * Replaces the account's password hash if it is still `expectedHash` (the one the caller verified);
   * resolves whether it did. A concurrent change, or a deleted account, leaves it untouched: false.
   */
  replacePasswordHash (userId: string, expectedHash: string, newHash: string, deadline?: number): Promise<boolean>

  /**
   * Creates the session; resolves with the ids of the oldest sessions it ended to stay within the
   * bound, or null when the password it was verified against is no longer the account's.
   */
  createSession (session: NewSession, deadline?: number): Promise<{ ended: string[] } | null>
  /**
   * Spends the presented refresh token and stores `next` as the session's live token, in one
   * atomic step, reading the account's roles in the same step. The token spent last, presented again
   * within `next.graceMs` while its successor is still live, is answered 'replayed' (nothing changes).
   * Any other of the last SPENT_TOKENS_KEPT spent tokens revokes the session (reuse detection); so
   * does a live token whose account no longer exists. An older spent token is merely invalid.
   */
  rotateRefreshToken (presented: RefreshPresentation, next: NextRefreshToken, accessTokenTtl: number, deadline?: number): Promise<RotationOutcome>
  /** Revokes the session if the presented token is its live or one of its spent tokens. */
  revokeSessionByRefreshToken (presented: RefreshPresentation, accessTokenTtl: number, deadline?: number): Promise<boolean>
  revokeSession (revocation: SessionRevocation, deadline?: number): Promise<void>
  /** Denies one access token (its `jti`) for `ttl` seconds; its session lives on. */
  denyAccessToken (userId: string, tokenId: string, ttl: number, deadline?: number): Promise<void>
  /** The account's live sessions, in no particular order. */
  listSessions (userId: string, deadline?: number): Promise<SessionInfo[]>
  /** Ends the session if it is one of the account's live sessions; resolves whether it was. */
  endSession (userId: string, sessionId: string, accessTokenTtl: number, deadline?: number): Promise<boolean>
  /** Ends every live session of the account but `except`; resolves with the ids it ended. */
  endSessions (userId: string, accessTokenTtl: number, options?: { except?: string, deadline?: number }): Promise<string[]>
  /**
   * The hot path: whether the session or the access token is denied and, with `account`, the
   * account as well — one round trip (on Redis: one batched command), issued before this returns.
   */
  checkAccess (userId: string, sessionId: string, tokenId: string, options: { account: boolean }): Promise<AccessState>

  /** Keeps `value` under `id` for `ttlMs`, for one take (a browser sign-in under way). */
  holdSignInAttempt (id: string, value: string, ttlMs: number, deadline?: number): Promise<void>
  /** What is held under `id`, forgotten in the same step: null when unknown, expired or taken already. */
  takeSignInAttempt (id: string, deadline?: number): Promise<string | null>

  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping (deadline?: number): Promise<void>
  /** Called after the store came back from an outage (Redis restarted, possibly empty). */
  onReconnect (listener: () => void): void
  /** Called when the store drops a connection that stopped answering (or answered garbage), with why. */
  onConnectionDropped (listener: (reason: string) => void): void
  close (): Promise<void>
}
