import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { ENVIRONMENT_VARIABLES, loadConfig } from '../src/config.js'

// docker-compose.yml and .env.example, read as compose reads them (running compose is not needed:
// this machine's host-only networking may rule out service-name DNS).

interface Service {
  image?: string
  build?: string
  command?: string[]
  env_file?: string | string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  healthcheck?: { test: string[] }
  stop_grace_period?: string
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> }
const { api, redis } = compose.services as { api: Service, redis: Service }

/** KEY=VALUE lines as compose's env_file reads them (comments and blank lines skipped). */
function envFile (text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter(line => /^[A-Z_][A-Z0-9_]*=/.test(line)).map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]))
}

t.test('Redis: append-only persistence, no eviction, a health check', async (t) => {
  const command = redis.command ?? []
  t.equal(command[command.indexOf('--appendonly') + 1], 'yes')
  t.equal(command[command.indexOf('--maxmemory-policy') + 1], 'noeviction', 'a full Redis refuses writes rather than dropping sessions')
  t.same(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping'])
})

t.test('the API: built from the Dockerfile, started once Redis is healthy, health-checked, given longer than its own drain to stop', async (t) => {
  t.equal(api.build, '.')
  t.same(api.depends_on, { redis: { condition: 'service_healthy' } })
  t.match(api.healthcheck?.test.join(' '), /\/health/)
  t.equal(api.environment?.NODE_ENV, 'production')
  t.equal(api.environment?.REDIS_URL, 'redis://redis:6379')
  t.ok(Number.parseInt(api.stop_grace_period ?? '0', 10) > 10, 'stop_grace_period above the 10 s drain')
  t.equal(api.env_file, '.env', 'secrets come from .env')
  t.equal(spawnSync('git', ['check-ignore', '-q', '.env']).status, 0, '.env is git-ignored, never committed')
})

t.test('.env.example lists every variable the API reads', async (t) => {
  const example = readFileSync('.env.example', 'utf8')
  for (const name of [...ENVIRONMENT_VARIABLES, 'NODE_EXTRA_CA_CERTS']) t.match(example, new RegExp(`^(# )?${name}=`, 'm'), name)
})

t.test('what production requires in its default mode is provided: compose\'s environment plus an env file with the secrets', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'token-auth-compose-'))
  const filled = join(dir, '.env')
  writeFileSync(filled, readFileSync('.env.example', 'utf8').replace(/^JWT_SECRET=$/m, `JWT_SECRET=${'s'.repeat(48)}`))
  const config = loadConfig({ ...envFile(readFileSync(filled, 'utf8')), ...api.environment })
  t.equal(config.isProduction, true)
  t.equal(config.redisUrl, 'redis://redis:6379')
  // The example as committed is not enough: its secret is for the operator to fill in.
  t.throws(() => loadConfig({ ...envFile(readFileSync('.env.example', 'utf8')), ...api.environment }), /JWT_SECRET/)
  t.throws(() => loadConfig({ ...api.environment }), /JWT_SECRET is required in production/, 'and without an env file, start-up is refused')
})
