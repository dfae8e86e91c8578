import { Redis } from 'ioredis'

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
 * Connects and pings within STARTUP_TIMEOUT_MS; otherwise drops the client (its retries would keep a
 * refused start-up's process alive) and rejects with a message naming REDIS_URL, without credentials.
 */
export async function connectOrExplain (redis: Redis, url: string): Promise<void> {
  // ioredis reports a failed first connect as "Connection is closed."; keep the real cause.
  let cause: Error | undefined
  redis.once('error', (err: Error) => { cause = err })
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STARTUP_TIMEOUT_MS} ms`)), STARTUP_TIMEOUT_MS)
      }),
    ])
  } catch (err) {
    redis.disconnect()
    throw unreachable(url, cause ?? err as Error)
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
