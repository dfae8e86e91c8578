import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { TEST_SECRET, testUsersFile } from './helpers/app.js'
import { freePort, testRedisUrl, uniqueKeyPrefix } from './helpers/redis.js'
import { startServer } from './helpers/server.js'

function demoUsersFile (): string {
  const path = join(mkdtempSync(join(tmpdir(), 'token-auth-demo-')), 'users.json')
  writeFileSync(path, JSON.stringify([{ username: 'demo', password: 'demo-password', roles: ['user'] }]))
  return path
}

t.test('production refuses to start on unsafe settings, naming the variable', async (t) => {
  const port = String(await freePort())
  const cases: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['no JWT_SECRET', { REDIS_URL: 'redis://127.0.0.1:6379' }, /JWT_SECRET is required in production/],
    ['a short JWT_SECRET', { REDIS_URL: 'redis://127.0.0.1:6379', JWT_SECRET: 'too-short' }, /JWT_SECRET must be at least 32 bytes/],
    ['no REDIS_URL', { JWT_SECRET: TEST_SECRET }, /REDIS_URL is required in production/],
    ['a demo user in USERS_FILE', { JWT_SECRET: TEST_SECRET, REDIS_URL: await testRedisUrl(), REDIS_KEY_PREFIX: uniqueKeyPrefix(), USERS_FILE: demoUsersFile() }, /USERS_FILE: 'demo' is a demo user with the published password; production refuses demo users/],
    ['a Redis that does not answer', { JWT_SECRET: TEST_SECRET, REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, /REDIS_URL: Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer/],
  ]
  for (const [name, env, message] of cases) {
    const run = await startServer({ NODE_ENV: 'production', PORT: port, USERS_FILE: await testUsersFile(), ...env }).exited
    t.equal(run.code, 1, `${name}: exit code 1`)
    t.match(run.stderr, message, `${name}: says why`)
    t.notMatch(run.stderr, /\n\s+at /, `${name}: no stack trace`)
  }
})

t.test('the server starts, serves, and exits 0 on SIGTERM', async (t) => {
  const port = await freePort()
  const server = startServer({ NODE_ENV: 'development', PORT: String(port), JWT_SECRET: TEST_SECRET })
  await server.listening()
  const response = await fetch(`http://127.0.0.1:${port}/health`)
  t.equal(response.status, 200)
  const login = await fetch(`http://127.0.0.1:${port}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'demo', password: 'demo-password' }),
  })
  t.equal(login.status, 200, 'development seeds the demo users')
  server.child.kill('SIGTERM')
  const run = await server.exited
  t.equal(run.code, 0)
  t.match(run.stdout, /"demoUsers":\["demo \/ demo-password \(user\)","admin \/ admin-password \(user, admin\)"\]/, 'demo credentials are printed at start-up')
  t.match(run.stdout, /embedded in-memory store/, 'the embedded store is announced')
  t.match(run.stdout, /shutting down/)
})
