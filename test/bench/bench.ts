/**
 * `npm run bench`: the hot path in the production configuration against a bare Fastify route, the
 * Express peer and two ceilings; logins; memory. Rounds A, B, C… (BENCH_ROUNDS, default 5), every server
 * restarted per round and pinned to core 0 (taskset), the load generator and a private Redis on core 1.
 * Each variant: 2 s warm-up, BENCH_DURATION s measured (default 10), BENCH_CONNECTIONS connections
 * (default 50). Runs about 10 minutes with the defaults (BENCH_RSS_SECONDS=60 of them twice for memory).
 * Stays out of `npm test` and CI. Exits 1 when a goal is missed (README "Performance").
 * For quick comparisons while working: BENCH_VARIANTS=bare,api (target names of test/bench/target.ts)
 * and BENCH_HOT_PATH_ONLY=1 (no logins, storms or memory runs); goals are then not judged.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { randomId } from '../../src/ids.js'
import { benchRedis } from './bench-redis.js'
import { loginPhase, refreshStorm } from './logins.js'
import { LOAD_CORE, SERVER_CORE, canPin, elapsedSeconds, load, median, pinSelf, rssBytes, startTarget, type LoadResult } from './measure.js'

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50)
const RSS_SECONDS = Number(process.env.BENCH_RSS_SECONDS ?? 60)
const ONLY = process.env.BENCH_VARIANTS?.split(',')
const HOT_PATH_ONLY = process.env.BENCH_HOT_PATH_ONLY === '1'
const GOALS = { profile: 0.40, admin: 0.45, overExpress: 3, p99OverBare: 4, loginsPerSecond: 50, healthP99Ms: 10 }

const started = performance.now()
pinSelf()
const redis = await benchRedis(LOAD_CORE)
const admin = { username: 'bench-admin', password: randomBytes(12).toString('base64url') }
const dir = mkdtempSync(join(tmpdir(), 'bench-'))
const usersFile = join(dir, 'users.json')
writeFileSync(usersFile, JSON.stringify([{ ...admin, roles: ['admin', 'user'], email: 'admin@bench.example' }]))

/** The production configuration: limits on and high enough never to refuse the load. */
function productionEnv (keyPrefix: string): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'production',
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: keyPrefix,
    JWT_SECRET: 'bench-secret-that-is-at-least-32-bytes-long',
    USERS_FILE: usersFile,
    RATE_LIMIT_MAX: '1000000',
    RATE_LIMIT_LOGIN_MAX: '1000000',
    RATE_LIMIT_REFRESH_MAX: '1000000',
    SESSIONS_PER_USER_MAX: '10000',
  }
}

async function accessTokenFor (url: string): Promise<{ token: string, profile: unknown }> {
  const login = await fetch(`${url}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(admin) })
  const { access_token: token } = await login.json() as { access_token: string }
  const profile = await (await fetch(`${url}/api/profile`, { headers: { authorization: `Bearer ${token}` } })).json()
  return { token, profile }
}

// The first load of a run measured low (CPU clocks ramping, caches cold): one unmeasured run first.
const warmUp = await startTarget('bare', { BENCH_PROFILE_JSON: '{}' })
await load(warmUp, '/api/profile', {}, 3, CONNECTIONS)
await warmUp.stop()

type Row = 'bare' | 'bare + JWT verify (ceiling)' | 'bare + 1 Redis round trip (ceiling)' | 'Express + passport-jwt + ioredis' | 'GET /api/profile' | 'GET /api/admin'
const rounds: Array<Record<Row, LoadResult>> = []

/**
 * A fresh key prefix with the users seeded under it, and the token a variant is loaded with (access
 * tokens live 15 minutes). Each load of the API gets its own: one client address's count under
 * RATE_LIMIT_MAX's ceiling (1 000 000 a minute) would otherwise be shared by two loads of a round.
 */
async function seeded (): Promise<{ env: NodeJS.ProcessEnv, token: string, profile: unknown }> {
  const env = productionEnv(`bench:${randomId()}:`)
  const seeder = await startTarget('api', env)
  const { token, profile } = await accessTokenFor(seeder.url)
  await seeder.stop()
  return { env, token, profile }
}

for (let round = 0; round < ROUNDS; round++) {
  const { env, token, profile } = await seeded()
  const results: Partial<Record<Row, LoadResult>> = {}
  const prefixes = [env.REDIS_KEY_PREFIX ?? '']
  const variants: Array<[Row, string, string]> = [
    ['bare', 'bare', '/api/profile'],
    ['bare + JWT verify (ceiling)', 'bare-jwt', '/api/profile'],
    ['bare + 1 Redis round trip (ceiling)', 'bare-redis', '/api/profile'],
    ['Express + passport-jwt + ioredis', 'express', '/api/profile'],
    ['GET /api/profile', 'api', '/api/profile'],
    ['GET /api/admin', 'api', '/api/admin'],
  ]
  for (const [row, variant, path] of variants.filter(([, variant]) => ONLY === undefined || variant === 'bare' || ONLY.includes(variant))) {
    const own = variant === 'api' ? await seeded() : { env, token }
    prefixes.push(own.env.REDIS_KEY_PREFIX ?? '')
    const target = await startTarget(variant, { ...own.env, BENCH_PROFILE_JSON: JSON.stringify(profile) })
    try {
      results[row] = await load(target, path, { authorization: `Bearer ${own.token}` }, DURATION_S, CONNECTIONS)
    } finally {
      await target.stop()
    }
    const r = results[row]
    console.log(`round ${String.fromCharCode(65 + round)}  ${row.padEnd(38)} ${String(Math.round(r.rps)).padStart(7)} req/s  ${r.cpuPerRequestUs.toFixed(1).padStart(6)} µs CPU/req  p50 ${r.p50} ms  p99 ${r.p99} ms  non-2xx ${r.bad}`)
  }
  rounds.push(results as Record<Row, LoadResult>)
  for (const prefix of new Set(prefixes)) await redis.deleteKeys(prefix)
}

// Per-round ratios to bare (req/s, and bare's CPU per request over the variant's), then their medians.
const rows = Object.keys(rounds[0] ?? {}) as Row[]
const summary = rows.map(row => {
  const rps = median(rounds.map(r => r[row].rps / r.bare.rps))
  const cpu = median(rounds.map(r => r.bare.cpuPerRequestUs / r[row].cpuPerRequestUs))
  return {
    row,
    rps,
    cpu,
    reqPerSecond: median(rounds.map(r => r[row].rps)),
    cpuUs: median(rounds.map(r => r[row].cpuPerRequestUs)),
    p50: median(rounds.map(r => r[row].p50)),
    p99: median(rounds.map(r => r[row].p99)),
    p99OverBare: median(rounds.map(r => r[row].p99 / Math.max(1, r.bare.p99))),
    bad: rounds.reduce((sum, r) => sum + r[row].bad, 0),
  }
})
console.log('\n| variant | req/s ratio | CPU/request ratio | req/s | µs CPU/request | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|---|---|---|')
for (const s of summary) {
  console.log(`| ${s.row} | ${s.rps.toFixed(2)} | ${s.cpu.toFixed(2)} | ${Math.round(s.reqPerSecond)} | ${s.cpuUs.toFixed(1)} | ${s.p50} | ${s.p99} | ${s.bad} |`)
}

if (HOT_PATH_ONLY || ONLY !== undefined) {
  await redis.stop()
  process.exit(0)
}

// Logins (argon2id), /health under 20 concurrent logins, Redis memory per session; then the refresh storms.
const loginEnv = productionEnv(`bench:${randomId()}:`)
const logins = await loginPhase(loginEnv, admin, redis, DURATION_S)
const stormTarget = await startTarget('api', loginEnv)
const storms = await refreshStorm(stormTarget.url, admin, CONNECTIONS, DURATION_S)
await stormTarget.stop()
await redis.deleteKeys(loginEnv.REDIS_KEY_PREFIX ?? '')

// Memory: two consecutive runs on /api/profile; the second's RSS within 10 % of the first's. Two
// minutes of one client would pass RATE_LIMIT_MAX's ceiling (1 000 000 a minute): the load comes as
// 8 clients behind a trusted loopback proxy.
const rssEnv: NodeJS.ProcessEnv = { ...productionEnv(`bench:${randomId()}:`), TRUST_PROXY: '127.0.0.1' }
const rssClients = Array.from({ length: 8 }, (_, i) => `198.51.100.${i + 1}`)
const rssTarget = await startTarget('api', rssEnv)
const rssAuth = { authorization: `Bearer ${(await accessTokenFor(rssTarget.url)).token}` }
const rss: number[] = []
let rssBad = 0
for (let run = 0; run < 2; run++) {
  rssBad += (await load(rssTarget, '/api/profile', rssAuth, RSS_SECONDS, CONNECTIONS, rssClients)).bad
  rss.push(rssBytes(rssTarget.pid))
}
await rssTarget.stop()
await redis.deleteKeys(rssEnv.REDIS_KEY_PREFIX ?? '')
await redis.stop()

const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(1)
console.log(`\nlogins: ${logins.pinned.toFixed(1)}/s pinned to one core, ${logins.unpinned.toFixed(1)}/s on every core; /health p99 ${logins.healthP99.toFixed(1)} ms during 20 concurrent logins`)
console.log(`Redis memory per active session: ${Math.round(logins.bytesPerSession)} bytes (${logins.sessions} sessions)`)
console.log(`refresh storm, each of ${CONNECTIONS} clients its own chain: ${storms.chains.rate}/s, p50 ${storms.chains.p50} ms, p99 ${storms.chains.p99} ms`)
console.log(`refresh storm, ${CONNECTIONS} clients replaying one token at once (grace window): ${storms.replays.rate}/s, p50 ${storms.replays.p50} ms, p99 ${storms.replays.p99} ms`)
console.log(`RSS after ${RSS_SECONDS} s of /api/profile: ${mb(rss[0] ?? 0)} MB, after another ${RSS_SECONDS} s: ${mb(rss[1] ?? 0)} MB`)
console.log(`${ROUNDS} rounds, ${CONNECTIONS} connections, ${DURATION_S} s per variant; server ${canPin ? `pinned to core ${SERVER_CORE}, load and Redis on core ${LOAD_CORE}` : 'not pinned (no taskset)'}; Node ${process.version}; ${elapsedSeconds(started)} s in all`)

const at = (row: Row) => summary.find(s => s.row === row)
const misses: string[] = []
const profile = at('GET /api/profile')
const adminRow = at('GET /api/admin')
const peer = at('Express + passport-jwt + ioredis')
if (profile !== undefined && Math.min(profile.rps, profile.cpu) < GOALS.profile) misses.push(`/api/profile at ${profile.rps.toFixed(2)} (req/s) and ${profile.cpu.toFixed(2)} (CPU) of bare, goal ≥ ${GOALS.profile}`)
if (adminRow !== undefined && Math.min(adminRow.rps, adminRow.cpu) < GOALS.admin) misses.push(`/api/admin at ${adminRow.rps.toFixed(2)} (req/s) and ${adminRow.cpu.toFixed(2)} (CPU) of bare, goal ≥ ${GOALS.admin}`)
for (const s of [profile, adminRow]) {
  if (s === undefined || peer === undefined) continue
  // Both measures: requests per second, and the server CPU each request costs.
  if (s.reqPerSecond < GOALS.overExpress * peer.reqPerSecond) misses.push(`${s.row} at ${(s.reqPerSecond / peer.reqPerSecond).toFixed(1)}× the Express peer's req/s, goal ≥ ${GOALS.overExpress}×`)
  if (s.cpuUs * GOALS.overExpress > peer.cpuUs) misses.push(`${s.row} at ${(peer.cpuUs / s.cpuUs).toFixed(1)}× less CPU per request than the Express peer, goal ≥ ${GOALS.overExpress}×`)
}
for (const s of [profile, adminRow]) {
  if (s === undefined) continue
  if (s.p99OverBare > GOALS.p99OverBare) misses.push(`${s.row} p99 ${s.p99OverBare.toFixed(1)}× bare's, goal ≤ ${GOALS.p99OverBare}×`)
  if (s.bad > 0) misses.push(`${s.row}: ${s.bad} non-2xx answers under load`)
}
if (logins.pinned < GOALS.loginsPerSecond) misses.push(`${logins.pinned.toFixed(1)} logins/s pinned, goal ≥ ${GOALS.loginsPerSecond}`)
if (logins.healthP99 > GOALS.healthP99Ms) misses.push(`/health p99 ${logins.healthP99.toFixed(1)} ms during logins, goal ≤ ${GOALS.healthP99Ms}`)
// A leak shows as growth; a second run that ends lower (the collector gave memory back) is no miss.
if ((rss[1] ?? 0) > (rss[0] ?? 0) * 1.1) misses.push(`RSS grew by more than 10 % between the two ${RSS_SECONDS} s runs`)
if (rssBad > 0) misses.push(`${rssBad} non-2xx answers during the memory runs`)
for (const miss of misses) console.error(`GOAL MISSED: ${miss}`)
if (misses.length > 0) process.exitCode = 1
