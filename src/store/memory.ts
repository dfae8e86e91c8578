import type { AuthStore, NewSession, RefreshPresentation, RotationOutcome, SessionRevocation, StoredUser } from './types.js'

interface SessionEntry {
  refreshHash: string
  spent: Set<string>
  expiresAt: number
}

const SWEEP_INTERVAL_MS = 60_000

/**
 * The embedded store, used when REDIS_URL is unset: one process only. It keeps Redis's guarantees:
 * each method runs to completion without yielding, so rotation is atomic, and every entry but user
 * accounts expires (read-time checks, plus a periodic sweep so memory stays bounded).
 */
export class MemoryStore implements AuthStore {
  readonly kind = 'memory'
  readonly #users = new Map<string, StoredUser>()
  readonly #sessions = new Map<string, SessionEntry>()
  /** denied sids and jtis → expiry, epoch ms */
  readonly #denied = new Map<string, number>()
  readonly #sweeper: NodeJS.Timeout
  readonly #now: () => number

  constructor (now: () => number = Date.now) {
    this.#now = now
    this.#sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS)
    this.#sweeper.unref()
  }

  async getUser (userId: string): Promise<StoredUser | null> {
    const user = this.#users.get(userId)
    return user === undefined ? null : structuredClone(user)
  }

  async createUserIfAbsent (user: StoredUser): Promise<boolean> {
    if (this.#users.has(user.id)) return false
    this.#users.set(user.id, structuredClone(user))
    return true
  }

  async createSession (session: NewSession): Promise<void> {
    this.#sessions.set(sessionKey(session.userId, session.sessionId), {
      refreshHash: session.refreshHash,
      spent: new Set(),
      expiresAt: session.expiresAt,
    })
  }

  async rotateRefreshToken (presented: RefreshPresentation, nextHash: string, accessTokenTtl: number): Promise<RotationOutcome> {
    const key = sessionKey(presented.userId, presented.sessionId)
    const session = this.#liveSession(key)
    if (session === undefined) return { outcome: 'invalid' }
    if (session.refreshHash === presented.presentedHash) {
      const user = this.#users.get(presented.userId)
      if (user === undefined) {
        this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
        return { outcome: 'invalid' }
      }
      session.spent.add(session.refreshHash)
      session.refreshHash = nextHash
      return { outcome: 'rotated', expiresAt: session.expiresAt, roles: [...user.roles] }
    }
    if (session.spent.has(presented.presentedHash)) {
      this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
      return { outcome: 'reused' }
    }
    return { outcome: 'invalid' }
  }

  async revokeSessionByRefreshToken (presented: RefreshPresentation, accessTokenTtl: number): Promise<boolean> {
    const session = this.#liveSession(sessionKey(presented.userId, presented.sessionId))
    if (session === undefined) return false
    if (session.refreshHash !== presented.presentedHash && !session.spent.has(presented.presentedHash)) return false
    this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
    return true
  }

  async revokeSession (revocation: SessionRevocation): Promise<void> {
    this.#revoke(revocation.userId, revocation.sessionId, revocation.accessTokenTtl)
    if (revocation.accessToken !== undefined) {
      this.#denied.set(deniedTokenKey(revocation.userId, revocation.accessToken.tokenId), this.#now() + revocation.accessToken.ttl * 1000)
    }
  }

  async isDenied (userId: string, sessionId: string, tokenId: string): Promise<boolean> {
    return this.#isLiveDenial(deniedSessionKey(userId, sessionId)) || this.#isLiveDenial(deniedTokenKey(userId, tokenId))
  }

  async ping (): Promise<void> {}

  onReconnect (): void {
    // Nothing to reconnect to: the embedded store lives and dies with the process.
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
  }

  /** Drops every expired entry; runs on a timer, exposed for tests. */
  sweep (): void {
    const now = this.#now()
    for (const [key, session] of this.#sessions) if (session.expiresAt <= now) this.#sessions.delete(key)
    for (const [key, expiresAt] of this.#denied) if (expiresAt <= now) this.#denied.delete(key)
  }

  /** Entries held, for tests that check memory stays bounded. */
  get size (): { sessions: number, denied: number, users: number } {
    return { sessions: this.#sessions.size, denied: this.#denied.size, users: this.#users.size }
  }

  #liveSession (key: string): SessionEntry | undefined {
    const session = this.#sessions.get(key)
    if (session === undefined) return undefined
    if (session.expiresAt <= this.#now()) {
      this.#sessions.delete(key)
      return undefined
    }
    return session
  }

  #revoke (userId: string, sessionId: string, accessTokenTtl: number): void {
    this.#sessions.delete(sessionKey(userId, sessionId))
    this.#denied.set(deniedSessionKey(userId, sessionId), this.#now() + accessTokenTtl * 1000)
  }

  #isLiveDenial (key: string): boolean {
    const expiresAt = this.#denied.get(key)
    if (expiresAt === undefined) return false
    if (expiresAt > this.#now()) return true
    this.#denied.delete(key)
    return false
  }
}

const sessionKey = (userId: string, sessionId: string) => `${userId}/${sessionId}`
const deniedSessionKey = (userId: string, sessionId: string) => `sid/${userId}/${sessionId}`
const deniedTokenKey = (userId: string, tokenId: string) => `jti/${userId}/${tokenId}`
