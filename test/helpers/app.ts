import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import { buildApp } from '../../src/app.js'
import { loadConfig, type Config } from '../../src/config.js'
import { hashPassword } from '../../src/passwords.js'
import { deleteKeysUnder, testRedisUrl, uniqueKeyPrefix } from './redis.js'
import { deleteClusterKeysUnder, testRedisCluster } from './redis-cluster.js'

export type StoreKind = 'memory' | 'redis' | 'cluster'
export const STORE_KINDS: StoreKind[] = ['memory', 'redis']
/** The core flows run on a Redis Cluster too (a private one per test process). */
export const CORE_STORE_KINDS: StoreKind[] = [...STORE_KINDS, 'cluster']

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!'
export const USERS = {
  alice: { username: 'alice', password: 'alice-correct-horse', roles: ['user'], email: 'alice@example.com' },
  root: { username: 'root', password: 'root-battery-staple', roles: ['user', 'admin'] },
} as const

let usersFile: Promise<string> | undefined
/**
 * The test users as a USERS_FILE, written once per test process with argon2id hashes (`passwordHash`
 * entries): every app a test builds seeds them without hashing a password again.
 */
export function testUsersFile (): Promise<string> {
  usersFile ??= (async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'token-auth-users-')), 'users.json')
    const entries = await Promise.all(Object.values(USERS).map(async ({ password, ...user }) => ({ ...user, passwordHash: await hashPassword(password) })))
    writeFileSync(file, JSON.stringify(entries))
    return file
  })()
  return usersFile
}

/**
 * The environment a test app runs with: production's variables, test values. The rate limits
 * stay on (every request goes through the limiter and its Redis counters) but are set high
 * enough that only the rate-limit tests, which set their own, ever reach them.
 */
export async function testEnv (store: StoreKind, overrides: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  return {
    NODE_ENV: 'test',
    JWT_SECRET: TEST_SECRET,
    USERS_FILE: await testUsersFile(),
    LOG_LEVEL: 'silent',
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_LOGIN_MAX: '1000000',
    RATE_LIMIT_REFRESH_MAX: '1000000',
    ...(store === 'redis' ? { REDIS_URL: await testRedisUrl(), REDIS_KEY_PREFIX: uniqueKeyPrefix() } : {}),
    // A test that brings its own cluster (overrides) does not start the shared one.
    ...(store === 'cluster' ? { ...(overrides.REDIS_CLUSTER_NODES === undefined ? (await testRedisCluster()).env : {}), REDIS_KEY_PREFIX: uniqueKeyPrefix() } : {}),
    ...overrides,
  }
}

interface Teardown { teardown (fn: () => unknown): void }

export interface TestApp {
  app: FastifyInstance
  config: Config
}

export interface TestAppOptions {
  /** where the app's logs go (tests that read them) */
  logStream?: DestinationStream
  /**
   * What a later feature would add (routes, hooks), registered as a plugin of its own before the
   * app starts, as routes/ modules are: a start-up it breaks rejects buildTestApp.
   */
  later?: (scope: FastifyInstance) => void
}

/**
 * Builds the app exactly as src/server.ts does (loadConfig + buildApp), closes it after the test
 * and deletes the keys it wrote to Redis.
 */
export async function buildTestApp (t: Teardown, store: StoreKind, overrides: NodeJS.ProcessEnv = {}, options: TestAppOptions = {}): Promise<TestApp> {
  const config = loadConfig(await testEnv(store, overrides))
  const app = await buildApp(config, options.logStream === undefined ? {} : { logStream: options.logStream })
  t.teardown(async () => {
    await app.close()
    if (config.redisUrl !== undefined) await deleteKeysUnder(config.redisUrl, config.redisKeyPrefix)
    if (config.redisCluster !== undefined) await deleteClusterKeysUnder(config.redisCluster, config.redisKeyPrefix)
  })
  const { later } = options
  if (later !== undefined) app.register(async function laterFeature (scope) { later(scope) })
  await app.ready()
  return { app, config }
}
