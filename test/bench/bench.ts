/**
 * `npm run bench`: throughput of the protected hot path (verify + denylist round trip) against a bare
 * Fastify JSON route, each server in its own process, on a real Redis (REDIS_URL, default
 * redis://127.0.0.1:6379). Goal: protected ≥ 0.55 × bare. Exits 1 when a goal is missed.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { randomId } from '../../src/ids.js'

const DURATION_S = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const GOAL_RATIO = 0.55
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const keyPrefix = `bench:${randomId()}:auth:`

/** RATE_LIMIT_MAX=0 (no limits) as DESIGN.md suggests for benchmarks, unless a scenario sets its own. */
async function startTarget (name: 'bare' | 'api', env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, ['dist/test/bench/target.js', name], {
    env: { ...process.env, NODE_ENV: 'development', REDIS_URL: redisUrl, REDIS_KEY_PREFIX: keyPrefix, LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = await once(createInterface({ input: child.stdout }), 'line') as [string]
  const { port } = JSON.parse(line) as { port: number }
  return { url: `http://127.0.0.1:${port}`, stop: async () => { child.kill('SIGTERM'); await once(child, 'exit') } }
}

async function load (title: string, url: string, headers: Record<string, string> = {}) {
  await autocannon({ url, headers, connections: CONNECTIONS, duration: 2 }) // warm-up: JIT, caches, connections
  const result = await autocannon({ url, headers, connections: CONNECTIONS, duration: DURATION_S })
  const bad = result.non2xx + result.errors + result.timeouts
  if (bad > 0) throw new Error(`${title}: ${bad} requests failed (non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts})`)
  const row = { title, 'req/s': Math.round(result.requests.average), 'p50 ms': result.latency.p50, 'p99 ms': result.latency.p99 }
  console.log(`${row.title.padEnd(44)} ${String(row['req/s']).padStart(8)} req/s   p50 ${row['p50 ms']} ms   p99 ${row['p99 ms']} ms`)
  return row
}

const bare = await startTarget('bare')
const bareRow = await load('bare Fastify JSON route', `${bare.url}/hello`)
await bare.stop()

async function bearerFor (url: string) {
  const login = await fetch(`${url}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: 'admin-password' }),
  })
  const { access_token: token } = await login.json() as { access_token: string }
  return { authorization: `Bearer ${token}` }
}

const api = await startTarget('api')
const auth = await bearerFor(api.url)
const adminRow = await load('GET /api/admin (verify + denylist + role)', `${api.url}/api/admin`, auth)
const profileRow = await load('GET /api/profile (… + account read)', `${api.url}/api/profile`, auth)
await api.stop()

// The same with the API-wide rate limit counting in Redis (a limit no run reaches): its cost.
const limited = await startTarget('api', { RATE_LIMIT_MAX: '1000000' })
const limitedRow = await load('GET /api/admin with the rate limit counting', `${limited.url}/api/admin`, await bearerFor(limited.url))
await limited.stop()

/**
 * A refresh storm: `clients` sessions, each refreshing its own chain as fast as answers come back
 * (every answer's refresh token is the next request's), for the bench's duration.
 */
async function refreshStorm (url: string, clients: number): Promise<{ rate: number, p50: number, p99: number }> {
  const tokens: string[] = []
  // One login at a time: a login hashes a password, and one client may have only two checked at once.
  for (let i = 0; i < clients; i++) {
    const login = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'demo', password: 'demo-password' }) })
    tokens.push((await login.json() as { refresh_token: string }).refresh_token)
  }
  const latencies: number[] = []
  const until = performance.now() + DURATION_S * 1000
  await Promise.all(tokens.map(async (first) => {
    let token = first
    while (performance.now() < until) {
      const started = performance.now()
      const answer = await fetch(`${url}/auth/refresh`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refresh_token: token }) })
      const body = await answer.json() as { refresh_token?: string }
      if (answer.status !== 200 || body.refresh_token === undefined) throw new Error(`refresh storm: ${answer.status}`)
      latencies.push(performance.now() - started)
      token = body.refresh_token
    }
  }))
  latencies.sort((a, b) => a - b)
  const at = (q: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? 0) * 10) / 10
  return { rate: Math.round(latencies.length / DURATION_S), p50: at(0.5), p99: at(0.99) }
}

const storm = await startTarget('api')
const stormRow = await refreshStorm(storm.url, CONNECTIONS)
console.log(`${'POST /auth/refresh storm (each client its chain)'.padEnd(44)} ${String(stormRow.rate).padStart(8)} req/s   p50 ${stormRow.p50} ms   p99 ${stormRow.p99} ms`)
await storm.stop()

const redis = new Redis(redisUrl)
const keys = await redis.keys(`${keyPrefix}*`)
if (keys.length > 0) await redis.del(...keys)
redis.disconnect()

const ratio = adminRow['req/s'] / bareRow['req/s']
console.log(`\nprotected / bare = ${ratio.toFixed(2)} (goal ≥ ${GOAL_RATIO}); profile / bare = ${(profileRow['req/s'] / bareRow['req/s']).toFixed(2)}; ` +
  `with the rate limit / bare = ${(limitedRow['req/s'] / bareRow['req/s']).toFixed(2)}`)
console.log(`${CONNECTIONS} connections, ${DURATION_S} s each, Redis at ${redisUrl.replace(/\/\/[^@]*@/, '//')}`)
if (ratio < GOAL_RATIO) {
  console.error(`GOAL MISSED: protected route at ${ratio.toFixed(2)} of bare Fastify`)
  process.exitCode = 1
}
