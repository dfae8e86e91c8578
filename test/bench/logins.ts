/** The bench's login and refresh phases: argon2id logins/s, /health during logins, refresh storms. */
import { Agent, request } from 'node:http'
import { median, startTarget } from './measure.js'
import type { BenchRedis } from './bench-redis.js'

const CONCURRENT_LOGINS = 20

interface Answer { status: number, body: string }

/** One HTTP request on `agent` (keep-alive, from the agent's local address). */
function send (agent: Agent, url: string, method: string, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(url, { agent, method, headers: payload === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }))
    })
    req.on('error', reject)
    req.end(payload)
  })
}

/** `CONCURRENT_LOGINS` clients, each from its own loopback address, logging in back to back for `seconds`. */
async function loginFlood (url: string, user: { username: string, password: string }, seconds: number, onEach?: () => void): Promise<number> {
  const until = performance.now() + seconds * 1000
  let ok = 0
  let refused = 0
  await Promise.all(Array.from({ length: CONCURRENT_LOGINS }, async (_, i) => {
    const agent = new Agent({ keepAlive: true, localAddress: `127.0.0.${10 + i}` })
    while (performance.now() < until) {
      const answer = await send(agent, `${url}/auth/login`, 'POST', user)
      if (answer.status === 200) ok++
      else refused++
      onEach?.()
    }
    agent.destroy()
  }))
  if (refused > 0) console.error(`logins: ${refused} refused`)
  return ok / seconds
}

export interface LoginFigures { pinned: number, unpinned: number, healthP99: number, bytesPerSession: number, sessions: number }

export async function loginPhase (env: NodeJS.ProcessEnv, user: { username: string, password: string }, redis: BenchRedis, seconds: number): Promise<LoginFigures> {
  const pinned = await startTarget('api', env)
  const memoryBefore = await redis.usedMemory()
  // /health probed back to back on its own connection while the logins run.
  const probe = new Agent({ keepAlive: true })
  const latencies: number[] = []
  const probing = { on: true }
  const prober = (async () => {
    while (probing.on) {
      const sent = performance.now()
      await send(probe, `${pinned.url}/health`, 'GET')
      latencies.push(performance.now() - sent)
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  })()
  const pinnedRate = await loginFlood(pinned.url, user, seconds)
  probing.on = false
  await prober
  probe.destroy()
  const sessions = Math.round(pinnedRate * seconds)
  const bytesPerSession = (await redis.usedMemory() - memoryBefore) / Math.max(1, sessions)
  await pinned.stop()

  const unpinned = await startTarget('api', env, 'all')
  const unpinnedRate = await loginFlood(unpinned.url, user, Math.max(3, seconds / 2))
  await unpinned.stop()
  latencies.sort((a, b) => a - b)
  return { pinned: pinnedRate, unpinned: unpinnedRate, healthP99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, bytesPerSession, sessions }
}

export interface StormFigures { rate: number, p50: number, p99: number }

function figures (latencies: number[], seconds: number): StormFigures {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q: number) => Math.round((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? 0) * 10) / 10
  return { rate: Math.round(latencies.length / seconds), p50: Math.round(median(sorted) * 10) / 10, p99: at(0.99) }
}

/**
 * Two storms on /auth/refresh: `clients` sessions each refreshing its own chain as fast as answers come,
 * and `clients` requests at once presenting one token (the grace window answers all with one successor).
 */
export async function refreshStorm (url: string, user: { username: string, password: string }, clients: number, seconds: number): Promise<{ chains: StormFigures, replays: StormFigures }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients })
  const refresh = async (token: string): Promise<string> => {
    const answer = await send(agent, `${url}/auth/refresh`, 'POST', { refresh_token: token })
    const next = (JSON.parse(answer.body) as { refresh_token?: string }).refresh_token
    if (answer.status !== 200 || next === undefined) throw new Error(`refresh storm: ${answer.status}`)
    return next
  }
  const login = async () => (JSON.parse((await send(agent, `${url}/auth/login`, 'POST', user)).body) as { refresh_token: string }).refresh_token

  const tokens: string[] = []
  for (let i = 0; i < clients; i++) tokens.push(await login())
  const chainLatencies: number[] = []
  let until = performance.now() + seconds * 1000
  await Promise.all(tokens.map(async (first) => {
    let token = first
    while (performance.now() < until) {
      const sent = performance.now()
      token = await refresh(token)
      chainLatencies.push(performance.now() - sent)
    }
  }))

  const replayLatencies: number[] = []
  let token = await login()
  until = performance.now() + seconds * 1000
  while (performance.now() < until) {
    const successors = await Promise.all(Array.from({ length: clients }, async () => {
      const sent = performance.now()
      const next = await refresh(token)
      replayLatencies.push(performance.now() - sent)
      return next
    }))
    if (new Set(successors).size !== 1) throw new Error('refresh storm: one token got more than one successor')
    token = successors[0] ?? ''
  }
  agent.destroy()
  return { chains: figures(chainLatencies, seconds), replays: figures(replayLatencies, seconds) }
}
