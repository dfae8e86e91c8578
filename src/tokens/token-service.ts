import type { RequestDeadline } from '../deadline.js'
import { AccessTokenExpiredError, InvalidAccessTokenError, InvalidCredentialsError, InvalidRefreshTokenError } from '../errors.js'
import { randomId, userIdFor } from '../ids.js'
import { ownPrincipal, type Principal } from '../principal.js'
import type { AccountSummary, AuthStore, SessionClient, StoredUser } from '../store/index.js'
import type { UserDirectory } from '../users.js'
import { ACCESS_TOKEN_MAX_LENGTH, type AccessTokenClaims, type AccessTokenCodec } from './access-token.js'
import { newRefreshToken, parseRefreshToken } from './refresh-token.js'
import { openSuccessor, sealSuccessor } from './successor-seal.js'

export interface IssuedTokens {
  accessToken: string
  /** seconds */
  accessTokenTtl: number
  refreshToken: string
  /** seconds left until the session's absolute expiry */
  refreshTokenTtl: number
}

/** Who an access token authenticated: its claims, and the account when it was asked for. */
export interface Authenticated {
  principal: Principal
  account?: AccountSummary
}

/**
 * Who is calling and by when the store must have answered. `ip` and `userAgent` are recorded on the
 * session at login and refresh; `ip` also names the caller in the password-hashing queue.
 */
export interface Caller extends SessionClient {
  deadline?: RequestDeadline
}

/** How a logout names what to end; either may be missing or garbage. */
export interface LogoutRequest {
  accessToken?: string | undefined
  refreshToken?: string | undefined
}

export interface TokenServiceOptions {
  store: AuthStore
  users: UserDirectory
  codec: AccessTokenCodec
  accessTokenTtl: number
  /** seconds a session lives unused (each refresh extends it) */
  refreshTokenTtl: number
  /** seconds a session lives at most from its login */
  sessionMaxAge: number
  /** an account's live sessions at most; a login beyond ends the oldest */
  maxSessionsPerUser: number
  /** seconds after a rotation in which the spent token gets the same successor again; 0: strict */
  refreshReuseGrace: number
  now?: () => number
}

/**
 * Login, refresh, logout and access-token checks: the whole token lifecycle, with no knowledge of
 * HTTP. Sessions are rotation families: one login, one session id, one live refresh token at a time.
 */
export class TokenService {
  readonly #store: AuthStore
  readonly #users: UserDirectory
  readonly #codec: AccessTokenCodec
  readonly #accessTokenTtl: number
  readonly #refreshTokenTtl: number
  readonly #sessionMaxAge: number
  readonly #maxSessionsPerUser: number
  readonly #graceMs: number
  readonly #now: () => number

  constructor (options: TokenServiceOptions) {
    this.#store = options.store
    this.#users = options.users
    this.#codec = options.codec
    this.#accessTokenTtl = options.accessTokenTtl
    this.#refreshTokenTtl = options.refreshTokenTtl
    this.#sessionMaxAge = options.sessionMaxAge
    this.#maxSessionsPerUser = options.maxSessionsPerUser
    this.#graceMs = options.refreshReuseGrace * 1000
    this.#now = options.now ?? Date.now
  }

  get accessTokenTtl (): number {
    return this.#accessTokenTtl
  }

  /**
   * `endedSessionIds`: the account's oldest sessions, ended to keep it within its bound. The session
   * lives REFRESH_TOKEN_TTL unused, SESSION_MAX_AGE at most.
   */
  async login (username: string, password: string, caller: Caller = { ip: null, userAgent: null }): Promise<IssuedTokens & { user: StoredUser, sessionId: string, endedSessionIds: string[] }> {
    const { deadline } = caller
    const user = await this.#users.authenticate(username, password, caller.ip ?? '', deadline)
    if (user === null) throw new InvalidCredentialsError(userIdFor(username))
    // An account from before epochs gets one at its first login.
    const epoch = user.epoch ?? await this.#store.ensureEpoch(user.id, randomId(), deadline?.at)
    if (epoch === null) throw new InvalidCredentialsError(userIdFor(username)) // deleted meanwhile
    // A password change that finished while this login checked the old password wins.
    const started = await this.#startSession({ id: user.id, roles: user.roles, epoch }, caller, user.passwordHash)
    if (started === null) throw new InvalidCredentialsError(user.id)
    return { ...started, user }
  }

  /**
   * Starts a session for an account whose identity an OpenID provider vouched for (src/oidc): no
   * password, the same session otherwise (rotation, reuse detection, logout, listing).
   */
  async startExternalSession (account: { id: string, roles: string[], epoch: string }, caller: Caller): Promise<IssuedTokens & { sessionId: string, endedSessionIds: string[] }> {
    const started = await this.#startSession(account, caller)
    // Only a password check can make the store refuse a session.
    if (started === null) throw new Error('the store refused a session without a password check')
    return started
  }

  async #startSession (user: { id: string, roles: string[], epoch: string }, caller: Caller, passwordHash?: string): Promise<(IssuedTokens & { sessionId: string, endedSessionIds: string[] }) | null> {
    const { deadline } = caller
    const sessionId = randomId()
    const refresh = newRefreshToken(user.id, sessionId)
    const now = this.#now()
    const expiresAt = now + this.#refreshTokenTtl * 1000
    const created = await this.#store.createSession({
      userId: user.id,
      sessionId,
      refreshHash: refresh.hash,
      expiresAt,
      maxExpiresAt: now + this.#sessionMaxAge * 1000,
      createdAt: now,
      client: { userAgent: caller.userAgent, ip: caller.ip },
      maxSessionsPerUser: this.#maxSessionsPerUser,
      accessTokenTtl: this.#accessTokenTtl,
      ...(passwordHash === undefined ? {} : { passwordHash }),
    }, deadline?.at)
    if (created === null) return null
    return { ...this.#issue(user, sessionId, refresh.token, expiresAt, now), sessionId, endedSessionIds: created.ended }
  }

  /**
   * Spends the refresh token and issues a new pair. Within the grace window after a rotation, the
   * spent token gets the same successor again (`replayed`: a retry or a second tab, not a second
   * chain). Throws InvalidRefreshTokenError (with `reason`) when the token is unknown, expired,
   * revoked, or spent otherwise — the last revokes the session.
   */
  async refresh (refreshToken: string, caller: Caller = { ip: null, userAgent: null }): Promise<IssuedTokens & { userId: string, sessionId: string, replayed: boolean }> {
    const presented = parseRefreshToken(refreshToken)
    if (presented === null) throw new InvalidRefreshTokenError()
    const named = { userId: presented.userId, sessionId: presented.sessionId }
    const next = newRefreshToken(presented.userId, presented.sessionId)
    const rotation = await this.#store.rotateRefreshToken(
      { ...named, presentedHash: presented.hash },
      {
        hash: next.hash,
        sealed: this.#graceMs > 0 ? sealSuccessor(refreshToken, next.token) : '',
        graceMs: this.#graceMs,
        idleMs: this.#refreshTokenTtl * 1000,
        epoch: randomId(),
        client: { userAgent: caller.userAgent, ip: caller.ip },
      },
      this.#accessTokenTtl,
      caller.deadline?.at
    )
    if (rotation.outcome === 'reused' || rotation.outcome === 'invalid') throw new InvalidRefreshTokenError(rotation.outcome, named)
    // The store gives the successor back sealed; only the token it succeeds can open it.
    const successor = rotation.outcome === 'replayed' ? openSuccessor(refreshToken, rotation.sealed) : next.token
    if (successor === null) throw new InvalidRefreshTokenError('invalid', named)
    // Roles are the account's as of this rotation, so a changed account takes effect at refresh.
    const user = { id: presented.userId, roles: rotation.roles, epoch: rotation.epoch }
    return { ...this.#issue(user, presented.sessionId, successor, rotation.expiresAt, this.#now()), ...named, replayed: rotation.outcome === 'replayed' }
  }

  /**
   * Ends the session named by either token and denies the access token until it expires.
   * Silently does nothing for tokens that are invalid: callers must not learn which were valid.
   */
  async logout (request: LogoutRequest, deadline?: RequestDeadline): Promise<{ userId: string | undefined, sessionIds: string[] }> {
    // The store is consulted whatever the tokens are, so an outage answers 503 for garbage too:
    // a fast 204 for invalid tokens next to a 503 for valid ones would tell them apart.
    await this.#store.ping(deadline?.at)
    const ended: string[] = []
    const claims = request.accessToken === undefined ? null : this.#claimsOrNull(request.accessToken)
    if (claims !== null) {
      const ttl = Math.max(1, claims.exp - Math.floor(this.#now() / 1000))
      await this.#store.revokeSession({
        userId: claims.sub,
        sessionId: claims.sid,
        accessTokenTtl: this.#accessTokenTtl,
        accessToken: { tokenId: claims.jti, ttl },
      }, deadline?.at)
      ended.push(claims.sid)
    }
    const presented = request.refreshToken === undefined ? null : parseRefreshToken(request.refreshToken)
    if (presented !== null && presented.sessionId !== claims?.sid) {
      const revoked = await this.#store.revokeSessionByRefreshToken(
        { userId: presented.userId, sessionId: presented.sessionId, presentedHash: presented.hash },
        this.#accessTokenTtl,
        deadline?.at
      )
      if (revoked) ended.push(presented.sessionId)
    }
    // The user only as far as a token proved it: a well-formed string can name anyone.
    return { userId: claims?.sub ?? (ended.length > 0 ? presented?.userId : undefined), sessionIds: ended }
  }

  /**
   * RFC 7009 revocation. A refresh token (live or one of its session's last spent) ends its session;
   * a valid access token is denied until it expires, its session living on. Anything else does
   * nothing, silently: the caller learns nothing of the token. The hint is not needed (the two kinds
   * of token differ in shape).
   */
  async revoke (token: string, deadline?: RequestDeadline): Promise<{ endedSession?: { userId: string, sessionId: string }, deniedToken?: { userId: string, sessionId: string } }> {
    // Consulted whatever the token is, as logout does: an outage is a 503 for garbage too.
    await this.#store.ping(deadline?.at)
    if (token.length > ACCESS_TOKEN_MAX_LENGTH) return {}
    const presented = parseRefreshToken(token)
    if (presented !== null) {
      const ended = await this.#store.revokeSessionByRefreshToken(
        { userId: presented.userId, sessionId: presented.sessionId, presentedHash: presented.hash },
        this.#accessTokenTtl,
        deadline?.at
      )
      return ended ? { endedSession: { userId: presented.userId, sessionId: presented.sessionId } } : {}
    }
    const claims = this.#claimsOrNull(token)
    if (claims === null) return {}
    await this.#store.denyAccessToken(claims.sub, claims.jti, Math.max(1, claims.exp - Math.floor(this.#now() / 1000)), deadline?.at)
    return { deniedToken: { userId: claims.sub, sessionId: claims.sid } }
  }

  /**
   * The hot path of every protected request: one HMAC check (cached per token) and one store read —
   * the denylist (session and token) and, with `account`, the account — sent before the first await,
   * so a caller may start it and decide something else (a rate limit) before awaiting it.
   */
  async authenticate (accessToken: string, options: { account: boolean } = { account: false }): Promise<Authenticated> {
    const claims = this.#codec.verify(accessToken)
    const state = await this.#store.checkAccess(claims.sub, claims.sid, claims.jti, options)
    if (state.denied) throw new InvalidAccessTokenError('The access token has been revoked')
    // A valid token for an account that no longer exists authenticates nobody.
    if (state.accountExists !== true) throw new InvalidAccessTokenError('The account of this token no longer exists')
    if (claims.epoch === undefined) {
      // Issued before epochs: good until its account has one, then as good as expired (its session,
      // if the store still has it, refreshes into a token that carries the epoch).
      if (state.epoch !== null && state.epoch !== undefined) throw new AccessTokenExpiredError()
    } else if (claims.epoch !== state.epoch) {
      // The store has lost what it knew when the token was issued (an account recreated after a
      // restart without persistence, a flush, a failover to an empty replica): nothing from before
      // the loss, revoked or not, is accepted again.
      throw new InvalidAccessTokenError('The access token has been revoked')
    }
    const principal = this.#principalOf(claims)
    if (!options.account) return { principal }
    if (state.account === undefined || state.account === null) throw new InvalidAccessTokenError('The account of this token no longer exists')
    return { principal, account: state.account }
  }

  /** Made once per verified token (the codec caches its claims, frozen): no allocation per request. */
  readonly #principals = new WeakMap<AccessTokenClaims, Principal>()
  #principalOf (claims: AccessTokenClaims): Principal {
    let principal = this.#principals.get(claims)
    if (principal === undefined) this.#principals.set(claims, principal = ownPrincipal(claims))
    return principal
  }

  #issue (user: { id: string, roles: string[], epoch: string }, sessionId: string, refreshToken: string, expiresAt: number, now: number): IssuedTokens {
    // An access token never outlives its session: ending a session then denies every token it issued
    // (a session that reached SESSION_MAX_AGE is gone from the index that logout-all reads).
    const lifetime = Math.max(1, Math.min(this.#accessTokenTtl, Math.floor((expiresAt - now) / 1000)))
    const accessToken = this.#codec.sign({ sub: user.id, roles: user.roles, sid: sessionId, jti: randomId(), epoch: user.epoch }, lifetime)
    return {
      accessToken,
      accessTokenTtl: lifetime,
      refreshToken,
      refreshTokenTtl: Math.max(1, Math.floor((expiresAt - now) / 1000)),
    }
  }

  #claimsOrNull (accessToken: string): AccessTokenClaims | null {
    try {
      return this.#codec.verify(accessToken)
    } catch {
      return null
    }
  }
}
