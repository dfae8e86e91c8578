import type { Redis } from 'ioredis'
import { connectOrExplain, failFastRedis } from './redis-client.js'
import { COMMAND_TIMEOUT_MS as STORE_COMMAND_TIMEOUT_MS } from './redis.js'

/**
 * How long a count may take before the caller decides without it (let through, or refuse). A
 * limiter that lets requests through uncounted must not hold them up: a short wait. One that
 * refuses must not refuse while the token store itself would still answer: the store's wait.
 */
export const COUNT_TIMEOUT_MS = { short: 150, asLongAsTheStore: STORE_COMMAND_TIMEOUT_MS } as const

/**
 * KEYS: counter; ARGV: window (ms) → {count, ms left in the window}. Fixed windows: the first count
 * starts one (the key's TTL), later counts only add. A counter somehow left without a TTL gets one,
 * so no counter outlives its window for long.
 */
const COUNT_IN_WINDOW = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
`

export interface WindowCount {
  /** counts in this window, this one included */
  current: number
  /** ms until the window ends */
  ttl: number
}

type CountingRedis = Redis & { countInWindow (key: string, windowMs: number): Promise<[number, number]> }

/** Rate-limit counters shared by every instance, on a fail-fast Redis client of their own. */
export class RedisRateCounter {
  readonly #redis: CountingRedis

  private constructor (redis: CountingRedis) {
    this.#redis = redis
  }

  /** Connects now; rejects with a message naming REDIS_URL when Redis does not answer. */
  static async connect (url: string): Promise<RedisRateCounter> {
    // The client's own timeout is the longest a caller may wait. It also bounds the connection's
    // handshake, so it cannot be the short wait itself: a slow Redis could then never connect.
    const redis = failFastRedis(url, COUNT_TIMEOUT_MS.asLongAsTheStore) as CountingRedis
    redis.defineCommand('countInWindow', { numberOfKeys: 1, lua: COUNT_IN_WINDOW })
    await connectOrExplain(redis, url)
    return new RedisRateCounter(redis)
  }

  /**
   * Counts one more event under `key` in its current window; rejects after `timeoutMs` (at most the
   * client's own timeout) without an answer. A count given up on may still be made when Redis answers.
   */
  async count (key: string, windowMs: number, timeoutMs: number): Promise<WindowCount> {
    const counting = this.#redis.countInWindow(key, windowMs)
    if (timeoutMs >= COUNT_TIMEOUT_MS.asLongAsTheStore) {
      // The client's own timeout is this one already: no second timer.
      const [current, ttl] = await counting
      return { current, ttl }
    }
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    })
    counting.catch(() => {}) // once given up on, its failure concerns no one
    try {
      const [current, ttl] = await Promise.race([counting, timeout])
      return { current, ttl }
    } finally {
      clearTimeout(timer)
    }
  }

  /** QUIT, so Redis finishes what it was sent; a Redis that does not answer is simply dropped. */
  async close (): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect())
  }
}
