import type { Test } from 'tap'
import { randomId, sha256 } from '../../src/ids.js'
import { MemoryStore, type AuthStore, type NewSession } from '../../src/store/index.js'
import { RedisStore } from '../../src/store/index.js'
import { testRedisStore, uniqueKeyPrefix } from './redis.js'
import { deleteClusterKeysUnder, testRedisCluster } from './redis-cluster.js'

/** Both stores, for tests of the contract they share. */
export const ACCESS_TTL = 900
export const HOUR = 3_600_000

/** The memory stores' clocks: each runs on the real clock plus what elapse() has moved it. */
const memoryClocks = new WeakMap<AuthStore, (ms: number) => void>()

export async function memoryStore (t: Test): Promise<AuthStore> {
  let ahead = 0
  const store = new MemoryStore(() => Date.now() + ahead)
  memoryClocks.set(store, (ms) => { ahead += ms })
  t.teardown(() => store.close())
  return store
}

/**
 * Lets `ms` pass for the store: the memory store's clock is moved (no wait); Redis keeps time by
 * itself (TTLs, its TIME), so that is a real wait.
 */
export async function elapse (store: AuthStore, ms: number): Promise<void> {
  const move = memoryClocks.get(store)
  if (move !== undefined) move(ms)
  else await new Promise(resolve => setTimeout(resolve, ms))
}

export async function redisStore (t: Test, keyPrefix = uniqueKeyPrefix()): Promise<AuthStore> {
  return (await testRedisStore(t, keyPrefix)).store
}

/** A RedisStore on the tests' shared Redis Cluster (testRedisCluster) under a fresh key prefix, cleaned up after the test. */
export async function clusterStore (t: Test, keyPrefix = uniqueKeyPrefix()): Promise<AuthStore> {
  const cluster = await testRedisCluster()
  const store = await RedisStore.connect({ cluster: cluster.config, keyPrefix })
  t.teardown(async () => {
    await store.close()
    await deleteClusterKeysUnder(cluster.config, keyPrefix)
  })
  return store
}

export const STORES = [['memory', memoryStore], ['redis', redisStore], ['cluster', clusterStore]] as const

export function session (userId = randomId()) {
  return { userId, sessionId: randomId(), refreshHash: sha256(randomId()), expiresAt: Date.now() + HOUR, maxSessionsPerUser: 100, accessTokenTtl: ACCESS_TTL }
}

/** A session of an account that exists (rotation reads the account's roles). */
export async function userSession<O extends Partial<NewSession>> (store: AuthStore, overrides: O = {} as O): Promise<ReturnType<typeof session> & O> {
  const s = { ...session(), ...overrides }
  await store.createUserIfAbsent({ id: s.userId, username: `user-${s.userId}`, email: null, roles: ['user', 'editor'], passwordHash: 'h' })
  await store.createSession(s)
  return s
}

/** The epoch a rotation gives an account that has none (every account userSession makes). */
export const EPOCH = 'test-epoch'

/** A successor with no grace window: today's strict rotation. */
export const strict = (hash: string) => ({ hash, sealed: '', graceMs: 0, epoch: EPOCH })

export const presented = (s: ReturnType<typeof session>, presentedHash = s.refreshHash) =>
  ({ userId: s.userId, sessionId: s.sessionId, presentedHash })

/** Whether the access check finds the session or the token denied. */
export async function denied (store: AuthStore, userId: string, sessionId: string, tokenId: string): Promise<boolean> {
  return (await store.checkAccess(userId, sessionId, tokenId, { account: false })).denied
}
