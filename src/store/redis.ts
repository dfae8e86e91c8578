import type { Redis } from 'ioredis'
import { StoreUnavailableError } from '../errors.js'
import { randomId } from '../ids.js'
import { accessCheckKeys, keysFor, signInAttemptKey } from './keys.js'
import type { BatchedRedis, PipelineScript } from './redis-pipeline.js'
import { COMMAND_TIMEOUT_MS, type BoundedRedis } from './bounded-redis.js'
import { RedisConnection, type RedisTarget, type ScriptCommands, type ScriptedClient } from './redis-connection.js'
import { COUNT_IN_WINDOW, RedisRateCounter } from './redis-rate-counter.js'
import { CHECK_ACCESS } from './redis-scripts.js'
import type { Reply } from './resp.js'
import { SPENT_TOKENS_KEPT, type AccessState, type AuthStore, type NewSession, type NextRefreshToken, type RefreshPresentation, type RotationOutcome, type SessionInfo, type SessionRevocation, type StoredUser, type ExternalAccount } from './types.js'

/** A rotation must run this long before its caller's timeout, to absorb error in the clock offset. */
const DEADLINE_MARGIN_MS = 100

export type RedisStoreOptions = RedisTarget & { keyPrefix: string }

/**
 * Roles as stored (a JSON array of strings). A record that is not one fails closed: the store is
 * answering nonsense, which is a 503, never a guess.
 */
function parseRoles (stored: string | undefined): string[] {
  let roles: unknown
  try {
    roles = JSON.parse(stored ?? '')
  } catch {
    roles = undefined
  }
  if (!Array.isArray(roles) || !roles.every(role => typeof role === 'string')) {
    throw new StoreUnavailableError(new Error('an account record has malformed roles'))
  }
  return roles
}

/**
 * CHECK_ACCESS's answer: {1} denied, or {0, id, epoch[, username, email, roles]} (nils: no such
 * account, or no epoch yet).
 */
function accessState (reply: Reply, withAccount: boolean): AccessState {
  const [denied, id, epoch, username, email, roles] = Array.isArray(reply) ? reply : []
  if (denied === 1) return { denied: true }
  if (denied !== 0) throw new StoreUnavailableError(new Error('an access check had a malformed answer'))
  const exists = typeof id === 'string'
  const state: AccessState = { denied: false, accountExists: exists, epoch: typeof epoch === 'string' ? epoch : null }
  if (!withAccount) return state
  state.account = !exists
    ? null
    : {
        id,
        username: typeof username === 'string' ? username : '',
        email: typeof email === 'string' && email !== '' ? email : null,
        roles: parseRoles(typeof roles === 'string' ? roles : undefined),
      }
  return state
}

/**
 * The store shared by every instance, on one Redis or a Redis Cluster (src/store/redis-connection.ts
 * holds what differs). The hot path (access checks, rate-limit counts) is batched: one write per
 * event-loop turn and node (src/store/redis-pipeline.ts). Everything else — MULTIs, the rotation
 * script, PING, TIME — goes through ioredis, each command with its own timeout. Both fail fast: no
 * offline queue, bounded waits, no replay of unanswered commands after a reconnect (a replayed
 * rotation could spend a token whose caller was already told 503). Every key of a command shares
 * the user's hash tag, so each command runs on one slot of a cluster.
 */
export class RedisStore implements AuthStore {
  readonly kind = 'redis'
  /** the rate-limit counters, on the batched connection */
  readonly rateCounter: RedisRateCounter
  /** socket writes and commands of the batched connection so far (how well turns are batched) */
  get batchStats (): { writes: number, commands: number } {
    return this.#pipeline.stats
  }

  readonly #connection: RedisConnection
  readonly #redis: BoundedRedis<ScriptedClient>
  readonly #pipeline: BatchedRedis
  readonly #checkAccess: PipelineScript
  readonly #prefix: string
  #pinging: Promise<void> | undefined

  private constructor (connection: RedisConnection, checkAccess: PipelineScript, rateCounter: RedisRateCounter, prefix: string) {
    this.#connection = connection
    this.#redis = connection.client
    this.#pipeline = connection.batched
    this.#checkAccess = checkAccess
    this.rateCounter = rateCounter
    this.#prefix = prefix
  }

  /**
   * Connects and pings; rejects with a message naming REDIS_URL (or REDIS_CLUSTER_NODES) when Redis
   * does not answer.
   */
  static async connect (options: RedisStoreOptions): Promise<RedisStore> {
    const { keyPrefix, ...target } = options
    let scripts: { checkAccess: PipelineScript, rateCounter: RedisRateCounter } | undefined
    const connection = await RedisConnection.connect(target as RedisTarget, (batched) => {
      scripts = { checkAccess: batched.defineScript(CHECK_ACCESS, 3), rateCounter: new RedisRateCounter(batched, batched.defineScript(COUNT_IN_WINDOW, 1)) }
    })
    const { checkAccess, rateCounter } = scripts!
    return new RedisStore(connection, checkAccess, rateCounter, keyPrefix)
  }

  async getUser (userId: string, deadline?: number): Promise<StoredUser | null> {
    const fields = await this.#redis.run(() => this.#redis.client.hgetall(this.#keys(userId).account), deadline)
    if (fields.id === undefined) return null
    return {
      id: fields.id,
      username: fields.username ?? '',
      email: fields.email === undefined || fields.email === '' ? null : fields.email,
      roles: parseRoles(fields.roles),
      passwordHash: fields.passwordHash ?? '',
      ...(fields.epoch === undefined ? {} : { epoch: fields.epoch }),
    }
  }

  async ensureEpoch (userId: string, epoch: string, deadline?: number): Promise<string | null> {
    return await this.#redis.run(() => this.#redis.client.ensureEpoch(this.#keys(userId).account, epoch), deadline)
  }

  async createUserIfAbsent (user: StoredUser): Promise<boolean> {
    const created = await this.#redis.run(() => this.#redis.client.createUserIfAbsent(
      this.#keys(user.id).account,
      'id', user.id,
      'username', user.username,
      'email', user.email ?? '',
      'roles', JSON.stringify(user.roles),
      'passwordHash', user.passwordHash,
      ...(user.epoch === undefined ? [] : ['epoch', user.epoch])
    ))
    return created === 1
  }

  async saveExternalAccount (account: ExternalAccount, epoch: string, deadline?: number): Promise<string> {
    return await this.#redis.run(() => this.#redis.client.saveExternalAccount(
      this.#keys(account.id).account, account.id, account.username, account.email ?? '', JSON.stringify(account.roles), epoch
    ), deadline)
  }

  async holdSignInAttempt (id: string, value: string, ttlMs: number, deadline?: number): Promise<void> {
    await this.#redis.run(() => this.#redis.client.set(signInAttemptKey(this.#prefix, id), value, 'PX', ttlMs), deadline)
  }

  async takeSignInAttempt (id: string, deadline?: number): Promise<string | null> {
    return await this.#redis.run(() => this.#redis.client.getdel(signInAttemptKey(this.#prefix, id)), deadline)
  }

  async replacePasswordHash (userId: string, expectedHash: string, newHash: string, deadline?: number): Promise<boolean> {
    const replaced = await this.#redis.run(() => this.#redis.client.replacePasswordHash(this.#keys(userId).account, expectedHash, newHash), deadline)
    return replaced === 1
  }

  async createSession (session: NewSession, deadline?: number): Promise<{ ended: string[] } | null> {
    const keys = this.#keys(session.userId)
    const beyond = await this.#redis.run(() => this.#redis.client.createSession(
      keys.session(session.sessionId), keys.sessions, keys.account,
      session.refreshHash, session.expiresAt, session.sessionId, session.maxSessionsPerUser,
      session.maxExpiresAt ?? session.expiresAt, session.createdAt ?? Date.now(), session.client?.userAgent ?? '', session.client?.ip ?? '',
      session.passwordHash ?? ''
    ), deadline)
    if (beyond === null) return null
    // Ending them is a second step (their keys are known only now, and a script may touch only the
    // keys it is given); run twice, by two logins at once, it ends each session once.
    for (const sessionId of beyond) {
      await this.revokeSession({ userId: session.userId, sessionId, accessTokenTtl: session.accessTokenTtl }, deadline)
    }
    return { ended: beyond }
  }

  async rotateRefreshToken (presented: RefreshPresentation, next: NextRefreshToken, accessTokenTtl: number, deadline?: number): Promise<RotationOutcome> {
    const keys = this.#keys(presented.userId)
    const sid = presented.sessionId
    // The script refuses to run (`late`) once its caller has given up, in Redis's clock.
    const givenUpAt = Math.min(Date.now() + COMMAND_TIMEOUT_MS, deadline ?? Infinity)
    const lateAfter = givenUpAt + this.#connection.clockOffset(keys.account) - DEADLINE_MARGIN_MS
    const [outcome, expiresAt, roles, sealed, epoch] = await this.#redis.guarded(givenUpAt, () => this.#redis.client.rotateRefreshToken(
      keys.session(sid), keys.spent(sid), keys.deniedSession(sid), keys.account, keys.sessions, keys.replay(sid),
      presented.presentedHash, next.hash, accessTokenTtl, lateAfter, sid, SPENT_TOKENS_KEPT, next.sealed, next.graceMs,
      next.idleMs ?? '', next.client === undefined ? '0' : '1', next.client?.userAgent ?? '', next.client?.ip ?? '', next.epoch ?? randomId()
    ), deadline)
    if (outcome === 'late') throw new StoreUnavailableError(new Error('rotation reached Redis after its deadline'))
    if (outcome === 'rotated') return { outcome, expiresAt: Number(expiresAt), roles: parseRoles(roles), epoch: epoch ?? '' }
    if (outcome === 'replayed') return { outcome, expiresAt: Number(expiresAt), roles: parseRoles(roles), sealed: sealed ?? '', epoch: epoch ?? '' }
    return { outcome: outcome === 'reused' ? 'reused' : 'invalid' }
  }

  async revokeSessionByRefreshToken (presented: RefreshPresentation, accessTokenTtl: number, deadline?: number): Promise<boolean> {
    const keys = this.#keys(presented.userId)
    const revoked = await this.#redis.run(() => this.#redis.client.revokeByRefreshToken(
      keys.session(presented.sessionId), keys.spent(presented.sessionId), keys.deniedSession(presented.sessionId), keys.sessions, keys.replay(presented.sessionId),
      presented.presentedHash, accessTokenTtl, presented.sessionId
    ), deadline)
    return revoked === 1
  }

  async revokeSession (revocation: SessionRevocation, deadline?: number): Promise<void> {
    const keys = this.#keys(revocation.userId)
    const multi = this.#redis.client.multi()
      .del(keys.session(revocation.sessionId), keys.spent(revocation.sessionId), keys.replay(revocation.sessionId))
      .zrem(keys.sessions, revocation.sessionId)
      .set(keys.deniedSession(revocation.sessionId), '1', 'EX', revocation.accessTokenTtl);
    (multi as unknown as ScriptCommands).retimeIndex(keys.sessions)
    if (revocation.accessToken !== undefined) {
      multi.set(keys.deniedToken(revocation.accessToken.tokenId), '1', 'EX', revocation.accessToken.ttl)
    }
    await this.#exec(multi, deadline)
  }

  async denyAccessToken (userId: string, tokenId: string, ttl: number, deadline?: number): Promise<void> {
    await this.#redis.run(() => this.#redis.client.set(this.#keys(userId).deniedToken(tokenId), '1', 'EX', ttl), deadline)
  }

  async listSessions (userId: string, deadline?: number): Promise<SessionInfo[]> {
    const keys = this.#keys(userId)
    const ids = await this.#redis.run(() => this.#redis.client.zrange(keys.sessions, '0', '-1'), deadline)
    if (ids.length === 0) return []
    // One slot (the user's hash tag): one pipeline, on a Cluster too.
    const reads = this.#redis.client.pipeline()
    for (const id of ids) reads.hmget(keys.session(id), 'expiresAt', 'createdAt', 'lastUsedAt', 'userAgent', 'ip')
    const results = await this.#redis.run(() => reads.exec(), deadline)
    const sessions: SessionInfo[] = []
    const now = Date.now() + this.#connection.clockOffset(keys.sessions)
    ids.forEach((id, i) => {
      const [err, fields] = results?.[i] ?? [new Error('no reply')]
      if (err !== null) throw new StoreUnavailableError(err)
      const [expiresAt, createdAt, lastUsedAt, userAgent, ip] = fields as Array<string | null>
      // Gone since the index was read, or expired and not yet evicted: not live.
      if (expiresAt === null || expiresAt === undefined || Number(expiresAt) <= now) return
      sessions.push({
        id,
        expiresAt: Number(expiresAt),
        createdAt: createdAt === null || createdAt === undefined ? null : Number(createdAt),
        lastUsedAt: lastUsedAt === null || lastUsedAt === undefined ? null : Number(lastUsedAt),
        userAgent: userAgent === null || userAgent === undefined || userAgent === '' ? null : userAgent,
        ip: ip === null || ip === undefined || ip === '' ? null : ip,
      })
    })
    return sessions
  }

  async endSession (userId: string, sessionId: string, accessTokenTtl: number, deadline?: number): Promise<boolean> {
    const keys = this.#keys(userId)
    const ended = await this.#redis.run(() => this.#redis.client.endSession(
      keys.session(sessionId), keys.spent(sessionId), keys.deniedSession(sessionId), keys.sessions, keys.replay(sessionId),
      accessTokenTtl, sessionId
    ), deadline)
    return ended === 1
  }

  async endSessions (userId: string, accessTokenTtl: number, options: { except?: string, deadline?: number } = {}): Promise<string[]> {
    const keys = this.#keys(userId)
    const ids = (await this.#redis.run(() => this.#redis.client.zrange(keys.sessions, '0', '-1'), options.deadline)).filter(id => id !== options.except)
    if (ids.length === 0) return []
    const ends = this.#redis.client.pipeline()
    for (const id of ids) {
      (ends as unknown as ScriptCommands).endSession(keys.session(id), keys.spent(id), keys.deniedSession(id), keys.sessions, keys.replay(id), accessTokenTtl, id)
    }
    const results = await this.#redis.run(() => ends.exec(), options.deadline)
    return ids.filter((_id, i) => {
      const [err, ended] = results?.[i] ?? [new Error('no reply')]
      if (err !== null) throw new StoreUnavailableError(err)
      return ended === 1
    })
  }

  checkAccess (userId: string, sessionId: string, tokenId: string, options: { account: boolean }): Promise<AccessState> {
    const [deniedSession, deniedToken, account] = accessCheckKeys(this.#prefix, userId, sessionId, tokenId)
    return new Promise((resolve, reject) => {
      const answer = (err: Error | null, reply: Reply) => {
        try {
          if (err !== null) throw new StoreUnavailableError(err)
          resolve(accessState(reply, options.account))
        } catch (failure) {
          reject(failure)
        }
      }
      this.#pipeline.evalScript(this.#checkAccess, [deniedSession, deniedToken, account, options.account ? '1' : '0'], answer)
    })
  }

  /**
   * Both connections answer (the batched one carries every protected request). Readiness probes are
   * not rate-limited: however many arrive at once, one PING per connection is on the wire.
   */
  async ping (deadline?: number): Promise<void> {
    this.#pinging ??= Promise.all([
      this.#redis.run(() => this.#redis.client.ping()),
      this.#redis.wait(() => this.#pipeline.ping()),
    ]).then(() => {}).finally(() => { this.#pinging = undefined })
    // A shared ping is awaited within this caller's own deadline.
    await this.#redis.wait(() => this.#pinging!, deadline)
  }

  onReconnect (listener: () => void): void {
    this.#connection.onReconnect(listener)
  }

  onConnectionDropped (listener: (reason: string) => void): void {
    this.#connection.onDropped(listener)
  }

  async close (): Promise<void> {
    await this.#connection.close()
  }

  #keys (userId: string) {
    return keysFor(this.#prefix, userId)
  }

  /** Runs a MULTI; a command failing inside it fails the whole call, never silently. */
  async #exec (multi: ReturnType<Redis['multi']>, deadline?: number): Promise<void> {
    const results = await this.#redis.run(() => multi.exec(), deadline)
    const failed = results?.find(([err]) => err !== null)
    if (results === null || failed !== undefined) throw new StoreUnavailableError(failed?.[0])
  }
}
