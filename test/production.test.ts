import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { hashPassword } from '../src/passwords.js'
import { USERS, TEST_SECRET, buildTestApp, testEnv } from './helpers/app.js'
import { uniqueKeyPrefix } from './helpers/redis.js'

function usersFile (entries: object[]): string {
  const path = join(mkdtempSync(join(tmpdir(), 'token-auth-prod-')), 'users.json')
  writeFileSync(path, JSON.stringify(entries))
  return path
}

/** A production configuration on the test Redis, under its own key prefix. */
async function productionEnv (overrides: NodeJS.ProcessEnv): Promise<NodeJS.ProcessEnv> {
  return { ...await testEnv('redis'), NODE_ENV: 'production', JWT_SECRET: TEST_SECRET, ...overrides }
}

t.test('production refuses a USERS_FILE that lists a demo user with its published password', async (t) => {
  const demoHash = await hashPassword('admin-password')
  for (const entry of [
    { username: 'demo', password: 'demo-password', roles: ['user'] },
    { username: 'admin', passwordHash: demoHash, roles: ['user', 'admin'] },
  ]) {
    const config = loadConfig(await productionEnv({ USERS_FILE: usersFile([USERS.alice, entry]) }))
    await t.rejects(buildApp(config), ConfigError, `${entry.username} (${'password' in entry ? 'password' : 'passwordHash'})`)
    await t.rejects(buildApp(config), new RegExp(`USERS_FILE: '${entry.username}' is a demo user with the published password; production refuses demo users`))
  }
})

t.test('production accepts the demo usernames with passwords of their own', async (t) => {
  await buildTestApp(t, 'redis', { NODE_ENV: 'production', USERS_FILE: usersFile([{ username: 'admin', password: 'a-password-of-our-own', roles: ['admin'] }]) })
  t.pass('started')
})

t.test('production refuses to start on a Redis where a development instance seeded the demo users', async (t) => {
  const REDIS_KEY_PREFIX = uniqueKeyPrefix()
  const development = await buildTestApp(t, 'redis', { NODE_ENV: 'development', USERS_FILE: '', REDIS_KEY_PREFIX })
  const login = await development.app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'admin', password: 'admin-password' } })
  t.equal(login.statusCode, 200, 'the development instance seeded the demo admin')

  const config = loadConfig(await productionEnv({ REDIS_KEY_PREFIX }))
  await t.rejects(buildApp(config), /the token store holds the demo users 'demo', 'admin' with the published password .*production refuses demo users/)
})
