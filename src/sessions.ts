import type { AuthStore, SessionInfo } from './store/index.js'

/** A live session as the API lists it: times in ISO 8601. */
export interface ListedSession {
  id: string
  createdAt: string
  lastUsedAt: string
  userAgent: string | null
  ip: string | null
}

export interface SessionServiceOptions {
  store: AuthStore
  /** seconds access tokens live: an ended session's `sid` stays denied that long */
  accessTokenTtl: number
  /** seconds a session lives unused: how a session from before sessions recorded their creation is dated */
  refreshTokenTtl: number
}

/**
 * The sessions of an account — list them, end one, end all (but one) — with no knowledge of HTTP.
 * Ending a session denies its access tokens on every instance from their next request on.
 */
export class SessionService {
  readonly #store: AuthStore
  readonly #accessTokenTtl: number
  readonly #refreshTokenTtl: number

  constructor (options: SessionServiceOptions) {
    this.#store = options.store
    this.#accessTokenTtl = options.accessTokenTtl
    this.#refreshTokenTtl = options.refreshTokenTtl
  }

  /** The account's live sessions, newest first. */
  async list (userId: string, deadline?: number): Promise<ListedSession[]> {
    const sessions = (await this.#store.listSessions(userId, deadline)).map(session => this.#listed(session))
    return sessions.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || (a.id < b.id ? -1 : 1))
  }

  /** Ends the session if it is one of the account's live sessions; whether it was. */
  end (userId: string, sessionId: string, deadline?: number): Promise<boolean> {
    return this.#store.endSession(userId, sessionId, this.#accessTokenTtl, deadline)
  }

  /** Ends every live session of the account but `except`; the ids it ended. */
  endAll (userId: string, options: { except?: string, deadline?: number } = {}): Promise<string[]> {
    return this.#store.endSessions(userId, this.#accessTokenTtl, options)
  }

  /**
   * A session from before sessions recorded their creation was created REFRESH_TOKEN_TTL before its
   * expiry (then an absolute lifetime), and last used then as far as anyone knows.
   */
  #listed (session: SessionInfo): ListedSession {
    const createdAt = session.createdAt ?? session.expiresAt - this.#refreshTokenTtl * 1000
    return {
      id: session.id,
      createdAt: new Date(createdAt).toISOString(),
      lastUsedAt: new Date(session.lastUsedAt ?? createdAt).toISOString(),
      userAgent: session.userAgent,
      ip: session.ip,
    }
  }
}
