import { randomId } from '../ids.js'
import { SPENT_TOKENS_KEPT, type AccessState, type AuthStore, type NewSession, type NextRefreshToken, type RefreshPresentation, type RotationOutcome, type SessionClient, type SessionInfo, type SessionRevocation, type StoredUser, type ExternalAccount } from './types.js'

interface SessionEntry extends SessionClient {
  refreshHash: string
  /** the last SPENT_TOKENS_KEPT spent hashes, newest first */
  spent: string[]
  /** the idle bound, moved by each rotation, never past maxExpiresAt */
  expiresAt: number
  maxExpiresAt: number
  createdAt: number
  lastUsedAt: number
  /** the last rotation, answerable to a replay of its spent token until `until` (epoch ms) */
  replay?: { spentHash: string, successorHash: string, sealed: string, until: number }
}

const SWEEP_INTERVAL_MS = 60_000
/** Browser sign-ins under way at most (about 300 bytes each) */
export const SIGN_IN_ATTEMPTS_MAX = 100_000

/**
 * The embedded store, used when REDIS_URL is unset: one process only. It keeps Redis's guarantees:
 * each method runs to completion without yielding, so rotation is atomic, and every entry but user
 * accounts expires (read-time checks, plus a periodic sweep so memory stays bounded).
 */
export class MemoryStore implements AuthStore {
  readonly kind = 'memory'
  readonly #users = new Map<string, StoredUser>()
  readonly #sessions = new Map<string, SessionEntry>()
  /** each account's session ids (those in #sessions, expired ones until the next look) */
  readonly #sessionsOfUser = new Map<string, Set<string>>()
  /** denied sids and jtis → expiry, epoch ms */
  readonly #denied = new Map<string, number>()
  /** browser sign-ins under way → what they hold and until when, epoch ms */
  readonly #signInAttempts = new Map<string, { value: string, until: number }>()
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

  async ensureEpoch (userId: string, epoch: string): Promise<string | null> {
    const user = this.#users.get(userId)
    if (user === undefined) return null
    user.epoch ??= epoch
    return user.epoch
  }

  async saveExternalAccount (account: ExternalAccount, epoch: string): Promise<string> {
    const user = this.#users.get(account.id)
    if (user === undefined) {
      this.#users.set(account.id, { ...structuredClone(account), passwordHash: '', epoch })
      return epoch
    }
    Object.assign(user, { username: account.username, email: account.email, roles: [...account.roles] })
    user.epoch ??= epoch
    return user.epoch
  }

  async holdSignInAttempt (id: string, value: string, ttlMs: number): Promise<void> {
    // Bounded whatever the rate of /start: beyond the bound the oldest attempt is forgotten (its sign-in fails).
    if (this.#signInAttempts.size >= SIGN_IN_ATTEMPTS_MAX) this.#signInAttempts.delete(this.#signInAttempts.keys().next().value as string)
    this.#signInAttempts.set(id, { value, until: this.#now() + ttlMs })
  }

  async takeSignInAttempt (id: string): Promise<string | null> {
    const attempt = this.#signInAttempts.get(id)
    this.#signInAttempts.delete(id)
    return attempt === undefined || attempt.until <= this.#now() ? null : attempt.value
  }

  async replacePasswordHash (userId: string, expectedHash: string, newHash: string): Promise<boolean> {
    const user = this.#users.get(userId)
    if (user === undefined || user.passwordHash !== expectedHash) return false
    user.passwordHash = newHash
    return true
  }

  async createSession (session: NewSession): Promise<{ ended: string[] } | null> {
    if (session.passwordHash !== undefined && this.#users.get(session.userId)?.passwordHash !== session.passwordHash) return null
    const createdAt = session.createdAt ?? this.#now()
    this.#sessions.set(sessionKey(session.userId, session.sessionId), {
      refreshHash: session.refreshHash,
      spent: [],
      expiresAt: session.expiresAt,
      maxExpiresAt: session.maxExpiresAt ?? session.expiresAt,
      createdAt,
      lastUsedAt: createdAt,
      userAgent: session.client?.userAgent ?? null,
      ip: session.client?.ip ?? null,
    })
    let ids = this.#sessionsOfUser.get(session.userId)
    if (ids === undefined) this.#sessionsOfUser.set(session.userId, ids = new Set())
    ids.add(session.sessionId)
    const live: Array<{ sessionId: string, expiresAt: number }> = []
    for (const sessionId of ids) {
      const entry = this.#liveSession(sessionKey(session.userId, sessionId))
      if (entry === undefined) ids.delete(sessionId)
      else live.push({ sessionId, expiresAt: entry.expiresAt })
    }
    if (live.length <= session.maxSessionsPerUser) return { ended: [] }
    // The oldest first, as Redis orders them (by expiry, then id).
    live.sort((a, b) => a.expiresAt - b.expiresAt || (a.sessionId < b.sessionId ? -1 : 1))
    const ended = live.slice(0, live.length - session.maxSessionsPerUser).map(({ sessionId }) => sessionId)
    for (const sessionId of ended) this.#revoke(session.userId, sessionId, session.accessTokenTtl)
    return { ended }
  }

  async rotateRefreshToken (presented: RefreshPresentation, next: NextRefreshToken, accessTokenTtl: number): Promise<RotationOutcome> {
    const key = sessionKey(presented.userId, presented.sessionId)
    const session = this.#liveSession(key)
    if (session === undefined) return { outcome: 'invalid' }
    const { replay } = session
    const replayed = replay !== undefined && replay.until > this.#now() && replay.spentHash === presented.presentedHash && replay.successorHash === session.refreshHash
    if (session.refreshHash === presented.presentedHash || replayed) {
      const user = this.#users.get(presented.userId)
      if (user === undefined) {
        this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
        return { outcome: 'invalid' }
      }
      // An account from before epochs gets one now.
      const epoch = user.epoch ??= next.epoch ?? randomId()
      if (replayed) return { outcome: 'replayed', expiresAt: session.expiresAt, roles: [...user.roles], sealed: replay.sealed, epoch }
      session.spent.unshift(session.refreshHash)
      if (session.spent.length > SPENT_TOKENS_KEPT) session.spent.pop()
      session.replay = next.graceMs > 0
        ? { spentHash: presented.presentedHash, successorHash: next.hash, sealed: next.sealed, until: Math.min(this.#now() + next.graceMs, session.expiresAt) }
        : undefined
      session.refreshHash = next.hash
      const now = this.#now()
      if (next.idleMs !== undefined) session.expiresAt = Math.min(now + next.idleMs, session.maxExpiresAt)
      session.lastUsedAt = now
      if (next.client !== undefined) Object.assign(session, { userAgent: next.client.userAgent, ip: next.client.ip })
      return { outcome: 'rotated', expiresAt: session.expiresAt, roles: [...user.roles], epoch }
    }
    if (session.spent.includes(presented.presentedHash)) {
      this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
      return { outcome: 'reused' }
    }
    return { outcome: 'invalid' }
  }

  async revokeSessionByRefreshToken (presented: RefreshPresentation, accessTokenTtl: number): Promise<boolean> {
    const session = this.#liveSession(sessionKey(presented.userId, presented.sessionId))
    if (session === undefined) return false
    if (session.refreshHash !== presented.presentedHash && !session.spent.includes(presented.presentedHash)) return false
    this.#revoke(presented.userId, presented.sessionId, accessTokenTtl)
    return true
  }

  async revokeSession (revocation: SessionRevocation): Promise<void> {
    this.#revoke(revocation.userId, revocation.sessionId, revocation.accessTokenTtl)
    if (revocation.accessToken !== undefined) {
      this.#denied.set(deniedTokenKey(revocation.userId, revocation.accessToken.tokenId), this.#now() + revocation.accessToken.ttl * 1000)
    }
  }

  async denyAccessToken (userId: string, tokenId: string, ttl: number): Promise<void> {
    this.#denied.set(deniedTokenKey(userId, tokenId), this.#now() + ttl * 1000)
  }

  async listSessions (userId: string): Promise<SessionInfo[]> {
    const sessions: SessionInfo[] = []
    for (const sessionId of this.#sessionsOfUser.get(userId) ?? []) {
      const entry = this.#liveSession(sessionKey(userId, sessionId))
      if (entry === undefined) continue
      const { createdAt, lastUsedAt, expiresAt, userAgent, ip } = entry
      sessions.push({ id: sessionId, createdAt, lastUsedAt, expiresAt, userAgent, ip })
    }
    return sessions
  }

  async endSession (userId: string, sessionId: string, accessTokenTtl: number): Promise<boolean> {
    if (this.#liveSession(sessionKey(userId, sessionId)) === undefined) return false
    this.#revoke(userId, sessionId, accessTokenTtl)
    return true
  }

  async endSessions (userId: string, accessTokenTtl: number, options: { except?: string } = {}): Promise<string[]> {
    const ended: string[] = []
    for (const { id } of await this.listSessions(userId)) {
      if (id === options.except) continue
      this.#revoke(userId, id, accessTokenTtl)
      ended.push(id)
    }
    return ended
  }

  async checkAccess (userId: string, sessionId: string, tokenId: string, options: { account: boolean }): Promise<AccessState> {
    const denied = this.#isLiveDenial(deniedSessionKey(userId, sessionId)) || this.#isLiveDenial(deniedTokenKey(userId, tokenId))
    if (denied) return { denied }
    const user = this.#users.get(userId)
    const state: AccessState = { denied, accountExists: user !== undefined, epoch: user?.epoch ?? null }
    if (options.account) state.account = user === undefined ? null : { id: user.id, username: user.username, email: user.email, roles: [...user.roles] }
    return state
  }

  async ping (): Promise<void> {}

  onConnectionDropped (): void {
    // Nothing to drop: no connection.
  }

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
    for (const [userId, ids] of this.#sessionsOfUser) {
      for (const sessionId of ids) if (!this.#sessions.has(sessionKey(userId, sessionId))) ids.delete(sessionId)
      if (ids.size === 0) this.#sessionsOfUser.delete(userId)
    }
    for (const [key, expiresAt] of this.#denied) if (expiresAt <= now) this.#denied.delete(key)
    for (const [id, attempt] of this.#signInAttempts) if (attempt.until <= now) this.#signInAttempts.delete(id)
  }

  /** Entries held, for tests that check memory stays bounded. */
  get size (): { sessions: number, denied: number, users: number, spentHashes: number, signInAttempts: number } {
    let spentHashes = 0
    for (const session of this.#sessions.values()) spentHashes += session.spent.length
    return { sessions: this.#sessions.size, denied: this.#denied.size, users: this.#users.size, spentHashes, signInAttempts: this.#signInAttempts.size }
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
    this.#sessionsOfUser.get(userId)?.delete(sessionId)
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
