import { EventEmitter } from 'node:events'
import calculateSlot from 'cluster-key-slot'
import type { Cluster } from 'ioredis'
import { RedisReplyError } from './resp.js'
import { RedisPipeline, pipelineScript, unavailable, type BatchedRedis, type PipelineScript, type ReplyCallback } from './redis-pipeline.js'

export interface ClusterPipelineOptions {
  /** the cluster's ioredis client: whose slot map (refreshed by ioredis) says which master serves a key */
  cluster: Cluster
  /** the redis:// or rediss:// URL (credentials included) of the node at host:port */
  nodeUrl: (host: string, port: number) => string
  commandTimeoutMs: number
}

/**
 * Redirects (MOVED, ASK, TRYAGAIN) one command follows at most, within its one timeout: enough for
 * a migrating slot's ASK + TRYAGAIN pairs, 20 ms apart, to fill the timeout; few enough that a
 * cluster answering MOVED in a circle is given up after a few milliseconds.
 */
const MAX_REDIRECTS = 64
const TRYAGAIN_DELAY_MS = 20

const SLOTS = 16_384

/** The master serving each of the 16 384 slots as ioredis last learnt it ("host:port"; undefined: none). */
function mastersBySlot (cluster: Cluster): Array<string | undefined> {
  // ioredis's array is sparse: a slot no one serves may be a hole, or past its end.
  return Array.from({ length: SLOTS }, (_, slot) => cluster.slots[slot]?.[0])
}

/**
 * The hot path on a Redis Cluster: one RedisPipeline (one write per event-loop turn) per master,
 * each command sent to the master that serves its first key's slot. Every key a command names
 * shares the user's hash tag, so one slot is always enough. A command answered MOVED, ASK or
 * TRYAGAIN (a slot moved or moving) was not run: it is sent again where the answer says, within what
 * is left of its timeout (#evalOn). Nothing is ever resent after a connection was lost with a command
 * on it. Emits 'dropped' (reason) as a RedisPipeline does; 'node-ready'
 * (address) each time a master's connection is (re)opened; and 'reconnected' (address) when that may
 * mean lost data: a master's connection open again after it was lost (a node restarted, maybe empty),
 * or a master that joined the slot map after start-up (a promoted replica, maybe empty).
 */
export class ClusterPipeline extends EventEmitter implements BatchedRedis {
  readonly #cluster: Cluster
  readonly #nodeUrl: (host: string, port: number) => string
  readonly #timeoutMs: number
  readonly #scripts: PipelineScript[] = []
  /** a connection per master, by "host:port" */
  readonly #nodes = new Map<string, RedisPipeline>()
  #closing = false
  /** past the first connect: a master new to the slot map may be a replica promoted empty */
  #started = false
  readonly #onRefresh = (): void => { this.#syncNodes() }

  constructor (options: ClusterPipelineOptions) {
    super()
    this.#cluster = options.cluster
    this.#nodeUrl = options.nodeUrl
    this.#timeoutMs = options.commandTimeoutMs
  }

  get stats (): { writes: number, commands: number } {
    let writes = 0
    let commands = 0
    for (const node of this.#nodes.values()) {
      writes += node.stats.writes
      commands += node.stats.commands
    }
    return { writes, commands }
  }

  /** The masters connected to now ("host:port"). */
  get masters (): string[] {
    return [...this.#nodes.keys()]
  }

  defineScript (lua: string, numberOfKeys: number): PipelineScript {
    const script = pipelineScript(lua, numberOfKeys)
    this.#scripts.push(script)
    return script
  }

  /** Opens a connection to every master ioredis knows; rejects unless each one answers. */
  async connect (): Promise<void> {
    this.#closing = false
    this.#cluster.on('refresh', this.#onRefresh)
    await Promise.all(this.#syncNodes())
    this.#started = true
  }

  /** TIME on the master at `address`, on its batched connection: [seconds, microseconds]. */
  async time (address: string): Promise<[number, number]> {
    const node = this.#nodes.get(address)
    if (node === undefined) throw unavailable(`no connection to the master ${address}`)
    const [seconds, micros] = await node.call(['TIME']) as [string, string]
    return [Number(seconds), Number(micros)]
  }

  evalScript (script: PipelineScript, keysAndArgs: ReadonlyArray<string | number>, callback: ReplyCallback, timeoutMs = this.#timeoutMs): void {
    const slot = calculateSlot(String(keysAndArgs[0]))
    const node = this.#nodeServing(slot)
    if (node === undefined) {
      process.nextTick(callback, unavailable(`no connection to the master of slot ${slot}`), null)
      return
    }
    this.#evalOn(node, slot, script, keysAndArgs, callback, performance.now() + timeoutMs, MAX_REDIRECTS, false)
  }

  /**
   * Sends to `node`, following what a cluster answers for a command it did not run: MOVED (the slot
   * moved: to the node named, and the slot map is refreshed), ASK (the slot is moving and the keys
   * are on the node named: ASKING first) and TRYAGAIN (keys split mid-migration: again shortly, along
   * the slot map) — at most MAX_REDIRECTS times, all within the command's one timeout.
   */
  #evalOn (node: RedisPipeline, slot: number, script: PipelineScript, keysAndArgs: ReadonlyArray<string | number>, callback: ReplyCallback, deadline: number, redirects: number, asking: boolean): void {
    const left = Math.floor(deadline - performance.now())
    if (left <= 0) {
      callback(unavailable(`slot ${slot} is moving and did not settle in time`), null)
      return
    }
    if (asking) node.send(['ASKING'], () => {}, left)
    node.evalScript(script, keysAndArgs, (err, reply) => {
      const redirect = err instanceof RedisReplyError ? /^(MOVED|ASK|TRYAGAIN)\b/.exec(err.message)?.[1] : undefined
      if (redirect === undefined || redirects === 0) {
        callback(redirect === undefined ? err : unavailable(`slot ${slot} is moving (${(err as Error).message})`), reply)
        return
      }
      if (redirect === 'TRYAGAIN') {
        setTimeout(() => {
          const current = this.#nodeServing(slot) ?? node
          this.#evalOn(current, slot, script, keysAndArgs, callback, deadline, redirects - 1, false)
        }, TRYAGAIN_DELAY_MS).unref()
        return
      }
      if (redirect === 'MOVED') this.#cluster.refreshSlotsCache()
      const address = (err as Error).message.split(' ')[2] ?? ''
      const target = this.#nodes.get(address) ?? this.#open(address)?.node
      if (target === undefined) {
        callback(unavailable(`slot ${slot} moved to an unknown node (${(err as Error).message})`), null)
        return
      }
      whenReady(target, deadline - performance.now(), () => {
        this.#evalOn(target, slot, script, keysAndArgs, callback, deadline, redirects - 1, redirect === 'ASK')
      })
    }, left)
  }

  /**
   * Every slot has a master we are connected to, and every master answers that the cluster is up
   * (CLUSTER INFO's cluster_state:ok, as each master sees it).
   */
  async ping (): Promise<void> {
    const owners = new Set(mastersBySlot(this.#cluster))
    if (owners.has(undefined) || owners.size === 0) throw unavailable('a slot has no master')
    await Promise.all([...owners].map(async address => {
      const node = this.#nodes.get(address as string)
      if (node === undefined) throw unavailable(`no connection to the master ${String(address)}`)
      const info = await node.call(['CLUSTER', 'INFO'])
      if (typeof info !== 'string' || !/^cluster_state:ok\r?$/m.test(info)) throw unavailable(`the master ${String(address)} reports the cluster down`)
    }))
  }

  async close (): Promise<void> {
    this.#closing = true
    this.#cluster.off('refresh', this.#onRefresh)
    await Promise.all([...this.#nodes.values()].map(node => node.close()))
    this.#nodes.clear()
  }

  #nodeServing (slot: number): RedisPipeline | undefined {
    const address = this.#cluster.slots[slot]?.[0]
    return address === undefined ? undefined : this.#nodes.get(address)
  }

  /** Opens connections to masters that are new in the slot map, closes those to nodes no longer in it. */
  #syncNodes (): Array<Promise<void>> {
    if (this.#closing) return []
    const owners = new Set(mastersBySlot(this.#cluster).filter(address => address !== undefined))
    const opening: Array<Promise<void>> = []
    for (const address of owners) {
      if (this.#nodes.has(address)) continue
      const opened = this.#open(address)
      if (opened !== undefined) opening.push(opened.connected)
    }
    for (const [address, node] of this.#nodes) {
      if (owners.has(address)) continue
      this.#nodes.delete(address)
      node.close().catch(() => {})
    }
    return opening
  }

  #open (address: string): { node: RedisPipeline, connected: Promise<void> } | undefined {
    // "host:port" as Redis announces it (an IPv6 host unbracketed); anything else, such as the
    // ":port" of a node that does not know its own address, is not reachable: no connection.
    const match = /^([^\s/?#@[\]]+):(\d{1,5})$/.exec(address)
    if (match === null || this.#closing) return undefined
    const [, host = '', port] = match
    let node: RedisPipeline
    try {
      node = new RedisPipeline({ url: this.#nodeUrl(host, Number(port)), commandTimeoutMs: this.#timeoutMs })
    } catch {
      // Never rethrown: the URL it could not parse holds the password.
      return undefined
    }
    // Commands redirected here while it connects each wait for 'ready' (whenReady): many at once is normal.
    node.setMaxListeners(0)
    for (const script of this.#scripts) node.defineScript(script.lua, script.numberOfKeys)
    let connectedBefore = false
    const joined = this.#started
    node.on('ready', () => {
      this.emit('node-ready', address)
      if (connectedBefore || joined) this.emit('reconnected', address)
      connectedBefore = true
    })
    node.on('dropped', (reason: string) => { this.emit('dropped', `${address}: ${reason}`) })
    this.#nodes.set(address, node)
    // A first connect that fails keeps retrying on its own (as any lost connection does); only
    // connect() awaits it, so a failure elsewhere is no unhandled rejection.
    const connected = node.connect()
    connected.catch(() => {})
    return { node, connected }
  }
}

/** Calls back at once if `node` is ready, else when it becomes ready or `withinMs` has passed. */
function whenReady (node: RedisPipeline, withinMs: number, then: () => void): void {
  if (node.ready) {
    then()
    return
  }
  const onReady = (): void => {
    clearTimeout(timer)
    then()
  }
  const timer = setTimeout(() => {
    node.off('ready', onReady)
    then()
  }, Math.max(0, withinMs))
  node.once('ready', onReady)
}
