import type { Config } from '../config.js'
import { MemoryStore } from './memory.js'
import { RedisStore } from './redis.js'
import type { AuthStore } from './types.js'

export type { AccountSummary, AuthStore, ExternalAccount, NewSession, SessionClient, SessionInfo, StoredUser, RotationOutcome } from './types.js'
export { MemoryStore } from './memory.js'
export { RedisStore } from './redis.js'
export { describeCluster, redactRedisUrl } from './redis-client.js'

/**
 * REDIS_URL set: Redis; REDIS_CLUSTER_NODES set: a Redis Cluster; either must answer now. Neither:
 * the embedded in-memory store.
 */
export async function createStore (config: Pick<Config, 'redisUrl' | 'redisCluster' | 'redisKeyPrefix'>): Promise<AuthStore> {
  if (config.redisCluster !== undefined) return RedisStore.connect({ cluster: config.redisCluster, keyPrefix: config.redisKeyPrefix })
  if (config.redisUrl === undefined) return new MemoryStore()
  return RedisStore.connect({ url: config.redisUrl, keyPrefix: config.redisKeyPrefix })
}
