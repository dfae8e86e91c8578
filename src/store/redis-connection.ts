import calculateSlot from 'cluster-key-slot'
import type { Cluster, Redis } from 'ioredis'
import type { RedisClusterConfig } from '../config.js'
import { BoundedRedis, COMMAND_TIMEOUT_MS, ownStream, type Stream } from './bounded-redis.js'
import { ClusterPipeline } from './cluster-pipeline.js'
import { clusterNodeUrl, clusterUnreachable, connectClusterOrExplain, connectOrExplain, failFastCluster, failFastRedis, unreachable } from './redis-client.js'
import { RedisPipeline, type BatchedRedis } from './redis-pipeline.js'
import { CREATE_SESSION, CREATE_USER_IF_ABSENT, END_SESSION, ENSURE_EPOCH, RETIME_INDEX, REPLACE_PASSWORD_HASH, REVOKE_BY_REFRESH_TOKEN, ROTATE_REFRESH_TOKEN, SAVE_EXTERNAL_ACCOUNT } from './redis-scripts.js'

export interface ScriptCommands {
  createSession (session: string, index: string, account: string, refreshHash: string, expiresAt: number, sessionId: string, maxSessions: number, maxExpiresAt: number, createdAt: number, userAgent: string, ip: string, verifiedPasswordHash: string): Promise<string[] | null>
  rotateRefreshToken (session: string, spent: string, deniedSession: string, account: string, index: string, replay: string, presentedHash: string, nextHash: string, accessTtl: number, deadline: number, sessionId: string, spentKept: number, sealedNext: string, graceMs: number, idleMs: number | '', hasClient: '1' | '0', userAgent: string, ip: string, epoch: string): Promise<[string, (string | number)?, string?, string?, string?]>
  endSession (session: string, spent: string, deniedSession: string, index: string, replay: string, accessTtl: number, sessionId: string): Promise<number>
  replacePasswordHash (account: string, expectedHash: string, newHash: string): Promise<number>
  ensureEpoch (account: string, epoch: string): Promise<string | null>
  retimeIndex (index: string): Promise<number>
  revokeByRefreshToken (session: string, spent: string, deniedSession: string, index: string, replay: string, presentedHash: string, accessTtl: number, sessionId: string): Promise<number>
  createUserIfAbsent (account: string, ...fieldsAndValues: string[]): Promise<number>
  saveExternalAccount (account: string, id: string, username: string, email: string, roles: string, epoch: string): Promise<string>
}
/** The ioredis client (one Redis or a cluster) with our scripts as commands. */
export type ScriptedClient = (Redis | Cluster) & ScriptCommands

const SCRIPTS: Array<[keyof ScriptCommands, number, string]> = [
  ['createSession', 3, CREATE_SESSION],
  ['rotateRefreshToken', 6, ROTATE_REFRESH_TOKEN],
  ['revokeByRefreshToken', 5, REVOKE_BY_REFRESH_TOKEN],
  ['createUserIfAbsent', 1, CREATE_USER_IF_ABSENT],
  ['endSession', 5, END_SESSION],
  ['replacePasswordHash', 1, REPLACE_PASSWORD_HASH],
  ['ensureEpoch', 1, ENSURE_EPOCH],
  ['saveExternalAccount', 1, SAVE_EXTERNAL_ACCOUNT],
  ['retimeIndex', 1, RETIME_INDEX],
]

const CLOCK_SYNC_INTERVAL_MS = 60_000
/** A clock sync whose round trip took longer is discarded. */
const CLOCK_SYNC_MAX_ROUND_TRIP_MS = 50

/** Where the store's Redis is: one server (REDIS_URL) or a cluster (REDIS_CLUSTER_NODES). */
export type RedisTarget = { url: string } | { cluster: RedisClusterConfig }

/**
 * The store's two ways to Redis, on one server or on a cluster — what differs between the two
 * lives here, so the store's commands are written once:
 * - `client`: ioredis (a Redis or a Cluster) behind our timeouts, for everything but the hot path;
 * - `batched`: the hot path's pipelining connection (one per master on a cluster);
 * - the Redis clock's offset from ours, per node: a rotation's cut-off is written in the time of the
 *   node that runs it;
 * - reconnects: on a cluster, one master restarting (maybe empty) is reported too, not only the
 *   whole cluster coming back (ioredis's 'ready' fires once).
 */
export class RedisConnection {
  readonly client: BoundedRedis<ScriptedClient>
  readonly batched: BatchedRedis
  readonly #cluster: Cluster | undefined
  readonly #clusterPipeline: ClusterPipeline | undefined
  /** Redis clock minus ours, in ms, by node ("host:port"; '' for a single Redis) */
  readonly #clockOffsets = new Map<string, number>()
  readonly #clockSync: NodeJS.Timeout
  readonly #reconnectListeners: Array<() => void> = []
  readonly #droppedListeners: Array<(reason: string) => void> = []

  private constructor (client: ScriptedClient, batched: BatchedRedis, cluster?: { client: Cluster, batched: ClusterPipeline }) {
    this.#cluster = cluster?.client
    this.#clusterPipeline = cluster?.batched
    const silentStreams = cluster === undefined ? undefined : () => silentMasterStreams(cluster.client)
    this.client = new BoundedRedis(client, (reason) => { this.#dropped(reason) }, silentStreams)
    this.batched = batched
    batched.on('dropped', (reason: string) => { this.#dropped(`batched connection: ${reason}`) })
    let connectedBefore = false
    client.on('ready', () => {
      if (connectedBefore) this.#reconnected()
      connectedBefore = true
      if (cluster === undefined) this.#syncClocks()
    })
    batched.on('reconnected', () => { for (const listener of this.#reconnectListeners) listener() })
    // A master's clock is measured whenever its connection opens (a new master included).
    batched.on('node-ready', (address: string) => { this.#syncClock(address) })
    this.#clockSync = setInterval(() => this.#syncClocks(), CLOCK_SYNC_INTERVAL_MS)
    this.#clockSync.unref()
  }

  /**
   * Connects both ways and pings; rejects with a message naming the variable when Redis does not
   * answer. `defineBatched` defines the hot path's scripts before anything connects.
   */
  static async connect (target: RedisTarget, defineBatched: (batched: BatchedRedis) => void): Promise<RedisConnection> {
    if ('url' in target) {
      const client = defineScripts(failFastRedis(target.url))
      const batched = new RedisPipeline({ url: target.url, commandTimeoutMs: COMMAND_TIMEOUT_MS })
      defineBatched(batched)
      const connection = new RedisConnection(client, batched)
      await connection.#connecting(async () => {
        await connectOrExplain(client as Redis, target.url)
        await connection.#connectBatched(err => unreachable(target.url, err))
      })
      return connection
    }
    const cluster = defineScripts(failFastCluster(target.cluster))
    const batched = new ClusterPipeline({ cluster, nodeUrl: (host, port) => clusterNodeUrl(target.cluster, host, port), commandTimeoutMs: COMMAND_TIMEOUT_MS })
    defineBatched(batched)
    const connection = new RedisConnection(cluster, batched, { client: cluster, batched })
    await connection.#connecting(async () => {
      await connectClusterOrExplain(cluster, target.cluster)
      await connection.#connectBatched(err => clusterUnreachable(target.cluster, err))
      // Measured as each connection opened; awaited once here, so the first rotation has them.
      await connection.#syncClocks()
    })
    return connection
  }

  /** Runs the start-up; if it fails, nothing of this connection is left running. */
  async #connecting (start: () => Promise<void>): Promise<void> {
    try {
      await start()
    } catch (err) {
      clearInterval(this.#clockSync)
      this.client.close()
      throw err
    }
  }

  /** Redis's clock minus ours, in ms, on the node that serves `key`. */
  clockOffset (key: string): number {
    if (this.#cluster === undefined) return this.#clockOffsets.get('') ?? 0
    const node = this.#cluster.slots[calculateSlot(key)]?.[0]
    return (node === undefined ? undefined : this.#clockOffsets.get(node)) ?? 0
  }

  onReconnect (listener: () => void): void {
    this.#reconnectListeners.push(listener)
  }

  onDropped (listener: (reason: string) => void): void {
    this.#droppedListeners.push(listener)
  }

  async close (): Promise<void> {
    this.client.close()
    clearInterval(this.#clockSync)
    await Promise.all([
      this.batched.close(),
      // QUIT, so Redis finishes what it was sent; a Redis that does not answer in time is dropped.
      this.client.run(() => this.client.client.quit()).catch(() => { this.client.client.disconnect() }),
    ])
  }

  async #connectBatched (explain: (err: Error) => Error): Promise<void> {
    try {
      await this.batched.connect()
    } catch (err) {
      await this.batched.close()
      this.client.client.disconnect()
      throw explain(err as Error)
    }
  }

  #reconnected (): void {
    if (this.#cluster === undefined) this.#syncClocks()
    for (const listener of this.#reconnectListeners) listener()
  }

  #dropped (reason: string): void {
    for (const listener of this.#droppedListeners) listener(reason)
  }

  /** Measures every node's clock (on a cluster, each master's, on its batched connection). */
  #syncClocks (): Promise<void> {
    const nodes = this.#clusterPipeline === undefined ? [''] : this.#clusterPipeline.masters
    return Promise.all(nodes.map(node => this.#syncClock(node))).then(() => {})
  }

  /** Estimates one node's clock offset from ours (midpoint of the round trip). */
  async #syncClock (node: string): Promise<void> {
    const sent = Date.now()
    try {
      const pipeline = this.#clusterPipeline
      const [seconds, micros] = await this.client.wait(() => pipeline === undefined ? this.client.client.time() : pipeline.time(node))
      const received = Date.now()
      // A slow answer (a stall ending) says little about the offset: its midpoint could be off by
      // half the stall, and an offset too large would let a rotation run after its caller gave up.
      if (received - sent > CLOCK_SYNC_MAX_ROUND_TRIP_MS) return
      this.#clockOffsets.set(node, Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) - (sent + received) / 2)
    } catch {
      // Keep the last estimate; the next sync (or reconnect) tries again.
    }
  }
}

function defineScripts<C extends Redis | Cluster> (client: C): C & ScriptCommands {
  for (const [name, numberOfKeys, lua] of SCRIPTS) client.defineCommand(name, { numberOfKeys, lua })
  return client as C & ScriptCommands
}

/** The sockets of the masters with commands unanswered: where a cluster's silence comes from. */
function silentMasterStreams (cluster: Cluster): Stream[] {
  return cluster.nodes('master')
    .filter(node => (node as unknown as { commandQueue?: { length: number } }).commandQueue?.length !== 0)
    .flatMap(node => ownStream(node))
}
