import { Redis } from 'ioredis'

const CONNECT_TIMEOUT_MS = 1000

/**
 * A Redis client that fails fast instead of waiting for Redis: not connected yet (call connect()),
 * no offline queue, a bounded command timeout, no replay of unanswered commands after a reconnect
 * (a replayed rotation could spend a token whose caller was already told 503, a replayed count
 * would count twice), and no auto-pipelining (ioredis holds each batch until the previous one on
 * the connection has answered, so a stall would stack timeouts: 0.5 s, 1 s, 1.5 s...).
 */
export function failFastRedis (url: string, commandTimeoutMs: number): Redis {
  return new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableAutoPipelining: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
  })
}
