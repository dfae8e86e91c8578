import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster } from 'ioredis'
import type { RedisClusterConfig } from '../../src/config.js'
import { redisAnswers } from './redis.js'
import type { Certificates } from './tls-certificates.js'

const run = promisify(execFile)

/** Whether `port` can be listened on now (loopback). */
function portIsFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port that is free, and whose cluster bus port (port + 10 000) is free too. */
async function clusterPort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if (await portIsFree(port) && await portIsFree(port + 10_000)) {
      taken.add(port)
      taken.add(port + 10_000)
      return port
    }
  }
  throw new Error('no free port pair for a Redis Cluster node')
}

/**
 * A Redis Cluster of the test's own: `masters` redis-server processes (no replicas, nothing kept on
 * disk) on free loopback ports, their slots assigned by `redis-cli --cluster create`, ready once every
 * node reports `cluster_state:ok`. `nodes` is what REDIS_CLUSTER_NODES would hold. With `password`,
 * every node requires it (requirepass, and masterauth between nodes).
 */
export class PrivateRedisCluster {
  readonly ports: number[]
  readonly password: string | undefined
  readonly tls: Certificates | undefined
  readonly #processes: ChildProcess[]
  readonly #dir: string
  readonly #detached: boolean

  private constructor (ports: number[], processes: ChildProcess[], dir: string, options: ClusterOptions) {
    this.ports = ports
    this.#processes = processes
    this.#dir = dir
    this.password = options.password
    this.tls = options.tls
    this.#detached = options.detached === true
    // Never outlive the test process, even when a test forgets to stop the cluster (one listener per
    // cluster) — unless it is the suite's, which outlives the process that starts it on purpose.
    if (!this.#detached) process.once('exit', () => { for (const child of this.#processes) child.kill('SIGKILL') })
  }

  /** The process ids of its nodes. */
  get pids (): number[] {
    return this.#processes.map(child => child.pid ?? 0)
  }

  get dir (): string {
    return this.#dir
  }

  /** A cluster another process started (the suite's): used, never stopped, by this one. */
  static attach (ports: number[], dir: string): PrivateRedisCluster {
    return new PrivateRedisCluster(ports, [], dir, { detached: true })
  }

  get nodes (): string {
    return this.ports.map(port => `127.0.0.1:${port}`).join(',')
  }

  /** What loadConfig makes of REDIS_CLUSTER_NODES (and the password) for this cluster. */
  get config (): RedisClusterConfig {
    return { nodes: this.ports.map(port => ({ host: '127.0.0.1', port })), username: undefined, password: this.password, tls: this.tls !== undefined }
  }

  /** The environment variables that point the app at this cluster. */
  get env (): NodeJS.ProcessEnv {
    return {
      REDIS_CLUSTER_NODES: this.nodes,
      ...(this.password === undefined ? {} : { REDIS_CLUSTER_PASSWORD: this.password }),
      ...(this.tls === undefined ? {} : { REDIS_CLUSTER_TLS: 'true' }),
    }
  }

  /**
   * With `tls`, every node (and the cluster bus) speaks TLS only, with that certificate. `detached`
   * nodes outlive this process (the suite's shared cluster: test/setup/).
   */
  static async start (masters = 3, options: ClusterOptions = {}): Promise<PrivateRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'token-auth-cluster-'))
    const taken = new Set<number>()
    const ports: number[] = []
    for (let i = 0; i < masters; i++) ports.push(await clusterPort(taken))
    const cluster = new PrivateRedisCluster(ports, [], dir, options)
    try {
      for (let i = 0; i < masters; i++) await cluster.#spawn(i)
      await run('redis-cli', [...cluster.#auth(), '--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'])
      await cluster.#untilOk()
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /**
   * Kills master `index` and starts it again with its cluster configuration but none of its data (a
   * restart without persistence): the cluster gets its slots back, empty.
   */
  async restartEmpty (index: number): Promise<void> {
    await this.#kill(index)
    await this.#spawn(index)
    await this.#untilOk()
  }

  /** Starts one more master, empty and serving no slot, joins it to the cluster; returns its index. */
  async addMaster (): Promise<number> {
    const taken = new Set(this.ports.flatMap(port => [port, port + 10_000]))
    const index = this.ports.length
    this.ports.push(await clusterPort(taken))
    await this.#spawn(index)
    await run('redis-cli', [...this.#auth(), '--cluster', 'add-node', `127.0.0.1:${this.ports[index]}`, `127.0.0.1:${this.ports[0]}`])
    await this.#untilOk()
    return index
  }

  /** Freezes master `index` (SIGSTOP): its sockets stay open and nothing answers, as a host gone silent. */
  pause (index: number): void {
    this.#processes[index]?.kill('SIGSTOP')
  }

  /** Lets a paused master run again (SIGCONT). */
  resume (index: number): void {
    this.#processes[index]?.kill('SIGCONT')
  }

  /** Kills master `index` (its slots are served by no one until it is back). */
  async kill (index: number): Promise<void> {
    await this.#kill(index)
  }

  /**
   * Moves the slot of `key`, with its keys, from master `from` to master `to`, as resharding does
   * (IMPORTING/MIGRATING, MIGRATE, then SETSLOT NODE on every master). With `finish: false` it stops
   * before the last step: the keys are on `to`, and `from` answers ASK for them.
   */
  async moveSlotOf (key: string, from: number, to: number, options: { finish?: boolean } = {}): Promise<void> {
    const slot = (await this.cli(from, 'cluster', 'keyslot', key)).trim()
    const [fromId, toId] = [(await this.cli(from, 'cluster', 'myid')).trim(), (await this.cli(to, 'cluster', 'myid')).trim()]
    await this.cli(to, 'cluster', 'setslot', slot, 'importing', fromId)
    await this.cli(from, 'cluster', 'setslot', slot, 'migrating', toId)
    const keys = (await this.cli(from, 'cluster', 'getkeysinslot', slot, '1000')).split('\n').filter(k => k !== '')
    if (keys.length > 0) {
      await this.cli(from, 'migrate', '127.0.0.1', String(this.ports[to]), '', '0', '5000', ...(this.password === undefined ? [] : ['auth', this.password]), 'keys', ...keys)
    }
    if (options.finish === false) return
    await this.finishMove(key, to)
  }

  /** The last step of moveSlotOf: every master learns that master `to` serves the slot of `key`. */
  async finishMove (key: string, to: number): Promise<void> {
    const slot = (await this.cli(to, 'cluster', 'keyslot', key)).trim()
    const toId = (await this.cli(to, 'cluster', 'myid')).trim()
    for (let i = 0; i < this.ports.length; i++) await this.cli(i, 'cluster', 'setslot', slot, 'node', toId)
    // Every master agrees again (a master that just joined may say the cluster is down for a moment).
    await this.#untilOk()
  }

  /**
   * Makes master `index` announce `port` to clients (CLUSTER SLOTS, MOVED) instead of its own, as a
   * node behind NAT does; resolves once every master tells clients so.
   */
  async announce (index: number, port: number): Promise<void> {
    const own = this.ports[index] as number
    await this.cli(index, 'config', 'set', 'cluster-announce-bus-port', String(own + 10_000))
    await this.cli(index, 'config', 'set', 'cluster-announce-port', String(port))
    for (let attempt = 0; attempt < 100; attempt++) {
      const views = await Promise.all(this.ports.map((_port, i) => this.cli(i, 'cluster', 'slots')))
      if (views.every(view => view.split('\n').includes(String(port)))) return
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new Error(`the cluster did not learn that master ${index} is at port ${port}`)
  }

  /** The index of the master holding `key` (the others answer MOVED). */
  async masterOf (key: string): Promise<number> {
    for (let i = 0; i < this.ports.length; i++) {
      if (!(await this.cli(i, 'exists', key)).includes('MOVED')) return i
    }
    throw new Error(`no master holds ${key}`)
  }

  /** A key (of user `{user:<n>}`) that master `index` serves. */
  async keyServedBy (index: number, suffix = 'account'): Promise<string> {
    for (let n = 0; n < 1000; n++) {
      const key = `{user:${n}}:${suffix}`
      if (!(await this.cli(index, 'exists', key)).includes('MOVED')) return key
    }
    throw new Error(`no key of master ${index} found`)
  }

  /** Runs redis-cli against master `index`. */
  async cli (index: number, ...args: string[]): Promise<string> {
    return (await run('redis-cli', [...this.#auth(), '-p', String(this.ports[index]), ...args])).stdout
  }

  /** Every key under `prefix` on every master. */
  async keysUnder (prefix: string): Promise<string[]> {
    const keys: string[] = []
    for (let i = 0; i < this.ports.length; i++) {
      keys.push(...(await this.cli(i, '--scan', '--pattern', `${prefix}*`)).split('\n').filter(key => key !== ''))
    }
    return keys
  }

  /** An ioredis Cluster client for the test's own reads and writes. */
  client (): Cluster {
    return new Cluster(this.config.nodes, { redisOptions: this.password === undefined ? {} : { password: this.password } })
  }

  #auth (): string[] {
    return [
      ...(this.password === undefined ? [] : ['-a', this.password, '--no-auth-warning']),
      ...(this.tls === undefined ? [] : ['--tls', '--cacert', this.tls.ca]),
    ]
  }

  async #spawn (index: number): Promise<void> {
    const port = this.ports[index] as number
    const tls = this.tls === undefined
      ? []
      : ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-cert-file', this.tls.cert, '--tls-key-file', this.tls.key, '--tls-ca-cert-file', this.tls.ca, '--tls-auth-clients', 'no']
    const child = spawn('redis-server', [
      ...(this.tls === undefined ? ['--port', String(port)] : tls), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(this.#dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      '--dir', this.#dir,
      ...(this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password]),
    ], { stdio: 'ignore', detached: this.#detached })
    this.#processes[index] = child
    child.unref()
    for (let attempt = 0; attempt < 100; attempt++) {
      const up = this.tls === undefined
        ? await redisAnswers('127.0.0.1', port, 200, this.password)
        : (await this.cli(index, 'ping').catch(() => '')).includes('PONG')
      if (up) return
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new Error(`cluster node on port ${port} did not answer`)
  }

  async #kill (index: number): Promise<void> {
    const child = this.#processes[index]
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.ref()
    child.kill('SIGKILL')
    await exited
    child.unref()
  }

  async #untilOk (): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const states = await Promise.all(this.ports.map((_port, i) => this.cli(i, 'cluster', 'info').catch(() => '')))
      if (states.every(info => info.includes('cluster_state:ok'))) return
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new Error('the cluster did not reach cluster_state:ok')
  }

  /** Stops the nodes this process started (an attached cluster, another process's, is left alone). */
  async stop (): Promise<void> {
    if (this.#processes.length === 0) return
    await Promise.all(this.ports.map((_port, i) => this.#kill(i)))
    rmSync(this.#dir, { recursive: true, force: true })
  }
}

interface ClusterOptions { password?: string, tls?: Certificates, detached?: boolean }

/** Where the suite's shared cluster is written down (test/setup/before.ts), for every test process. */
const SHARED_CLUSTER_DIR = join(process.cwd(), '.tap')

/**
 * Where the shared cluster of one tap run is written down: named after the tap runner's pid, the
 * parent of its before/after scripts and of every test process, so two runs in one checkout each
 * have their own.
 */
export function sharedClusterFile (runnerPid = process.ppid): string {
  return join(SHARED_CLUSTER_DIR, `shared-cluster-${runnerPid}.json`)
}

export interface SharedCluster { ports: number[], pids: number[], dir: string }

function readSharedCluster (file: string): SharedCluster | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as SharedCluster
  } catch {
    return undefined
  }
}

/** The suite's shared cluster if one is written down, every node answers and reports the cluster up. */
async function sharedCluster (): Promise<PrivateRedisCluster | undefined> {
  const shared = readSharedCluster(sharedClusterFile())
  if (shared === undefined) return undefined
  const cluster = PrivateRedisCluster.attach(shared.ports, shared.dir)
  const states = await Promise.all(shared.ports.map((_port, i) => cluster.cli(i, 'cluster', 'info').catch(() => '')))
  return states.every(info => info.includes('cluster_state:ok')) ? cluster : undefined
}

/**
 * Stops the suite's shared cluster written down in SHARED_CLUSTER_FILE, if any (also one a crashed
 * run left behind): kills each pid that is still a redis-server on one of its ports, deletes its files.
 */
export function stopSharedCluster (file = sharedClusterFile()): void {
  const shared = readSharedCluster(file)
  if (shared !== undefined) {
    for (const [i, pid] of shared.pids.entries()) {
      let command = ''
      try {
        command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      } catch {
        continue // gone
      }
      // A pid reused since by something else is left alone. (Redis retitles itself "redis-server host:port [cluster]".)
      if (!command.includes('redis-server') || !command.includes(`:${shared.ports[i] ?? ''} `)) continue
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone meanwhile
      }
    }
    rmSync(shared.dir, { recursive: true, force: true })
  }
  rmSync(file, { force: true })
}

/** Stops the shared clusters of tap runs that are gone (interrupted, killed): their runner pid is dead. */
export function stopOrphanedSharedClusters (): void {
  let names: string[] = []
  try {
    names = readdirSync(SHARED_CLUSTER_DIR)
  } catch {
    return
  }
  for (const name of names) {
    const pid = /^shared-cluster-(\d+)\.json$/.exec(name)?.[1]
    if (pid === undefined || existsSync(`/proc/${pid}`)) continue
    stopSharedCluster(join(SHARED_CLUSTER_DIR, name))
  }
}

/**
 * Deletes what one test wrote on the cluster `config` names, by prefix, on every master (a cluster
 * the test may since have stopped: then there is nothing to clean).
 */
export async function deleteClusterKeysUnder (config: RedisClusterConfig, prefix: string): Promise<void> {
  const client = new Cluster(config.nodes, { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null, redisOptions: { password: config.password, username: config.username, connectTimeout: 500 } })
  client.on('error', () => {})
  try {
    await client.connect()
  } catch {
    client.disconnect()
    return
  }
  try {
    for (const master of client.nodes('master')) {
      let cursor = '0'
      do {
        const [next, keys] = await master.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        for (const key of keys) await client.del(key)
        cursor = next
      } while (cursor !== '0')
    }
  } finally {
    client.disconnect()
  }
}

/** A cluster of the test's own (for tests that kill, flush, pause or reshard), stopped after it. */
export async function privateRedisCluster (t: { teardown (fn: () => unknown): void }, options: { password?: string } = {}): Promise<PrivateRedisCluster> {
  const cluster = await PrivateRedisCluster.start(3, options)
  t.teardown(() => cluster.stop())
  return cluster
}

let shared: Promise<PrivateRedisCluster> | undefined

/**
 * The cluster tests share: the suite's (started once before all test files by test/setup/), else one
 * of this process's own (started on first use, about two seconds, stopped when the process exits).
 * Tests keep to key prefixes of their own on it; tests that kill, flush or reshard start their own.
 */
export function testRedisCluster (): Promise<PrivateRedisCluster> {
  shared ??= sharedCluster().then(async (suite) => {
    if (suite !== undefined) return suite
    const own = await PrivateRedisCluster.start()
    process.once('beforeExit', () => { own.stop().catch(() => {}) })
    return own
  })
  return shared
}
