import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisClusterConfig } from '../config.js'

const CONNECT_TIMEOUT_MS = 1000
/** How long start-up waits for Redis before it refuses to start. */
const STARTUP_TIMEOUT_MS = 3000

/**
 * A Redis client that fails fast instead of waiting for Redis: not connected yet (connect it with
 * connectOrExplain), no offline queue, no replay of unanswered commands after a reconnect (a
 * replayed rotation could spend a token whose caller was already told 503, a replayed count would
 * count twice), and no auto-pipelining (ioredis holds each batch until the previous one on the
 * connection has answered, so a stall would stack timeouts: 0.5 s, 1 s...). Commands are bounded by
 * their caller (RedisStore's own timeout, which a busy event loop cannot fake), not by ioredis.
 * Connection errors surface as rejected commands; the error event only needs a listener.
 */
export function failFastRedis (url: string): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  })
  redis.on('error', () => {})
  return redis
}

/**
 * failFastRedis's twin for a cluster: the same per-node options, and no retry of a command that may
 * have run — ioredis would otherwise resend one whose connection closed (retryDelayOnFailover) or
 * that met CLUSTERDOWN, after its caller was told 503. A MOVED, ASK or TRYAGAIN reply means the
 * command did not run, so following it is safe. Node connections are not reopened by themselves: a
 * lost node is reached again on its next use (ioredis asks another node, which answers MOVED).
 */
export function failFastCluster (config: RedisClusterConfig): Cluster {
  const redisOptions: RedisOptions = {
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(config.tls ? { tls: {} } : {}),
  }
  const cluster = new Cluster(config.nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    retryDelayOnTryAgain: 50,
    maxRedirections: 4,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    // Slots move rarely (resharding, failover); a MOVED reply refreshes the map at once besides.
    slotsRefreshInterval: 10_000,
    clusterRetryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    redisOptions,
  })
  cluster.on('error', () => {})
  cluster.on('node error', () => {})
  return cluster
}

/** REDIS_CLUSTER_NODES as a message may show it (it holds no credentials). */
export function describeCluster (config: RedisClusterConfig): string {
  return config.nodes.map(node => `${node.host.includes(':') ? `[${node.host}]` : node.host}:${node.port}`).join(',')
}

/** Connects to the cluster and pings within STARTUP_TIMEOUT_MS; otherwise drops it and explains, naming REDIS_CLUSTER_NODES. */
export async function connectClusterOrExplain (cluster: Cluster, config: RedisClusterConfig): Promise<void> {
  await connectWithin(cluster, cause => clusterUnreachable(config, cause))
}

export function clusterUnreachable (config: RedisClusterConfig, cause: Error): Error {
  return new Error(`REDIS_CLUSTER_NODES: the Redis Cluster at ${describeCluster(config)} does not answer (${cause.message})`, { cause })
}

/** The URL the batched connection to one cluster node is opened with. */
export function clusterNodeUrl (config: RedisClusterConfig, host: string, port: number): string {
  const credentials = config.password === undefined ? '' : `${encodeURIComponent(config.username ?? '')}:${encodeURIComponent(config.password)}@`
  return `${config.tls ? 'rediss' : 'redis'}://${credentials}${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * Connects and pings within STARTUP_TIMEOUT_MS; otherwise drops the client (its retries would keep a
 * refused start-up's process alive) and rejects with a message naming REDIS_URL, without credentials.
 */
export async function connectOrExplain (redis: Redis, url: string): Promise<void> {
  await connectWithin(redis, cause => unreachable(url, cause))
}

async function connectWithin (client: Redis | Cluster, explain: (cause: Error) => Error): Promise<void> {
  // ioredis reports a failed first connect as "Connection is closed."; keep the real cause.
  let cause: Error | undefined
  client.once('error', (err: Error) => { cause = err })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      client.connect().then(() => client.ping()),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS)
      }),
    ])
  } catch (err) {
    client.disconnect()
    throw explain(cause ?? err as Error)
  } finally {
    clearTimeout(timer)
  }
}

/** The start-up refusal for a Redis that does not answer: names REDIS_URL, never its credentials. */
export function unreachable (url: string, cause: Error): Error {
  return new Error(`REDIS_URL: Redis at ${redactRedisUrl(url)} does not answer (${cause.message})`, { cause })
}

/** REDIS_URL without its credentials, for messages and logs. */
export function redactRedisUrl (url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.toString()
  } catch {
    return '(unparseable REDIS_URL)'
  }
}
