import type { BatchedRedis, PipelineScript } from './redis-pipeline.js'

/**
 * How long a count may take before the caller decides without it (let through, or refuse). A
 * limiter that lets requests through uncounted must not hold them up: a short wait. One that
 * refuses must not refuse while the token store itself would still answer: the store's wait.
 */
export const COUNT_TIMEOUT_MS = { short: 150, asLongAsTheStore: 500 } as const

/**
 * KEYS: counter; ARGV: window (ms) → {count, ms left in the window}. Fixed windows: the first count
 * starts one (the key's TTL), later counts only add. A counter somehow left without a TTL gets one,
 * so no counter outlives its window for long.
 */
export const COUNT_IN_WINDOW = `
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

/**
 * Rate-limit counters shared by every instance, on the store's batched connection: a request's
 * count leaves in the same write as its access check (and every other request's of that turn).
 */
export class RedisRateCounter {
  readonly #pipeline: BatchedRedis
  readonly #script: PipelineScript

  constructor (pipeline: BatchedRedis, script: PipelineScript) {
    this.#pipeline = pipeline
    this.#script = script
  }

  /** Counts one more event under `key` in its current window; fails after `timeoutMs` unanswered. */
  count (key: string, windowMs: number, timeoutMs: number, callback: (err: Error | null, count?: WindowCount) => void): void {
    this.#pipeline.evalScript(this.#script, [key, windowMs], (err, reply) => {
      if (err !== null) {
        callback(err)
        return
      }
      const [current, ttl] = Array.isArray(reply) ? reply : []
      if (typeof current !== 'number' || typeof ttl !== 'number') callback(new Error('a count had a malformed answer'))
      else callback(null, { current, ttl })
    }, timeoutMs)
  }
}
