/** What the bench measures with: pinned processes, their CPU time and memory, autocannon runs. */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import autocannon from 'autocannon'

/** The server's core and the load generator's (with Redis); pinning only where taskset exists. */
export const SERVER_CORE = 0
export const LOAD_CORE = 1
export const canPin = spawnSync('taskset', ['-c', '0', 'true']).status === 0
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100

/** The command line that runs `command` pinned to `core` (as it is, where it cannot be pinned). */
export function pinnedTo (core: number | 'all' | undefined, command: string, args: string[]): [string, string[]] {
  if (!canPin || core === undefined) return [command, args]
  // 'all': explicitly every core, since a child inherits this process's own pinning otherwise.
  const cores = core === 'all' ? `0-${Math.max(0, availableParallelism() - 1)}` : String(core)
  return ['taskset', ['-c', cores, command, ...args]]
}

/** Pins this process (the load generator) to LOAD_CORE. */
export function pinSelf (): void {
  if (canPin) spawnSync('taskset', ['-pc', String(LOAD_CORE), String(process.pid)])
}

/** User + system CPU time a process has used, in µs (from /proc/<pid>/stat; 0 where there is no /proc). */
export function cpuMicros (pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1e6 / CLOCK_TICKS
  } catch {
    return 0
  }
}

/** Resident set size of a process, in bytes. */
export function rssBytes (pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

export interface Target { url: string, pid: number, stop: () => Promise<void> }

/**
 * Starts test/bench/target.ts's `variant` in its own process, pinned to SERVER_CORE unless `core` says
 * otherwise ('all': every core). Its logs go to /dev/null: written (their CPU counts), not collected.
 */
export async function startTarget (variant: string, env: NodeJS.ProcessEnv, core: number | 'all' = SERVER_CORE): Promise<Target> {
  const [command, args] = pinnedTo(core, process.execPath, ['dist/test/bench/target.js', variant])
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const exited = once(child, 'exit').then(([code]) => { throw new Error(`${variant} exited (${String(code)}) before it listened`) })
  const [message] = await Promise.race([once(child, 'message'), exited]) as [{ port: number }]
  exited.catch(() => {})
  // taskset execs node in place: the child's pid is the server's.
  return {
    url: `http://127.0.0.1:${message.port}`,
    pid: child.pid ?? 0,
    stop: async () => {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

export interface LoadResult { rps: number, requests: number, p50: number, p99: number, bad: number, cpuPerRequestUs: number }

/**
 * A warm-up, then `seconds` of load with `connections` connections, and the server's CPU per request.
 * `forwardedFor`: each connection's requests take these X-Forwarded-For values in turn (a target that
 * trusts the loopback proxy then counts them as that many clients).
 */
export async function load (target: Target, path: string, headers: Record<string, string>, seconds: number, connections: number, forwardedFor: string[] = []): Promise<LoadResult> {
  const url = `${target.url}${path}`
  const requests = forwardedFor.map(address => ({ headers: { ...headers, 'x-forwarded-for': address } }))
  const options = { url, headers, connections, ...(requests.length > 0 ? { requests } : {}) }
  await autocannon({ ...options, duration: 2 }) // JIT, caches, connections
  const cpuBefore = cpuMicros(target.pid)
  const result = await autocannon({ ...options, duration: seconds })
  const cpu = cpuMicros(target.pid) - cpuBefore
  const answered = result.requests.total
  return {
    rps: result.requests.average,
    requests: answered,
    p50: result.latency.p50,
    p99: result.latency.p99,
    bad: result.non2xx + result.errors + result.timeouts,
    cpuPerRequestUs: answered > 0 ? cpu / answered : 0,
  }
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] ?? 0 : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

/** Seconds since `started` (performance.now()), for saying how long the bench ran. */
export const elapsedSeconds = (started: number) => Math.round((performance.now() - started) / 1000)
