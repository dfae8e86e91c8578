import type { Config } from '../config.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'
import type { AuthStore } from './types.js'

export type { AccountSummary, AuthStore, NewSession, SessionClient, SessionInfo, StoredUser, RotationOutcome } from './types.js'
export { MemoryStore } from './memory.js'
export { RedisStore } from './redis.js'
export { redactRedisUrl } from './redis-client.js'

/** REDIS_URL set: Redis, which must answer now. Unset: the embedded in-memory store. */
export async function createStore (config: Pick<Config, 'redisUrl' | 'redisKeyPrefix'>): Promise<AuthStore> {
  if (config.redisUrl === undefined) return new MemoryStore()
  return RedisStore.connect({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix })
}
