import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { redisAnswers } from './redis.js'

const run = promisify(execFile)

/** Whether `port` can be listened on now (loopback). */
function portIsFree (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A port that is free, and whose cluster bus port (port + 10 000) is free too. */
async function clusterPort (taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if (taken.has(port) || taken.has(port + 10_000)) continue
    if (await portIsFree(port) && await portIsFree(port + 10_000)) {
      taken.add(port)
      taken.add(port + 10_000)
      return port
    }
  }
  throw new Error('no free port pair for a Redis Cluster node')
}

/**
 * A Redis Cluster of the test's own: `masters` redis-server processes (no replicas, nothing kept on
 * disk) on free loopback ports, their slots assigned by `redis-cli --cluster create`, ready once every
 * node reports `cluster_state:ok`. `nodes` is what REDIS_CLUSTER_NODES would hold.
 */
export class PrivateRedisCluster {
  readonly ports: number[]
  readonly #processes: ChildProcess[]
  readonly #dir: string

  private constructor (ports: number[], processes: ChildProcess[], dir: string) {
    this.ports = ports
    this.#processes = processes
    this.#dir = dir
  }

  get nodes (): string {
    return this.ports.map(port => `127.0.0.1:${port}`).join(',')
  }

  static async start (masters = 3): Promise<PrivateRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'token-auth-cluster-'))
    const taken = new Set<number>()
    const ports: number[] = []
    for (let i = 0; i < masters; i++) ports.push(await clusterPort(taken))
    const processes = ports.map(port => spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      '--dir', dir,
    ], { stdio: 'ignore' }))
    const cluster = new PrivateRedisCluster(ports, processes, dir)
    for (const child of processes) {
      child.unref()
      process.once('exit', () => child.kill('SIGKILL'))
    }
    try {
      for (const port of ports) {
        let up = false
        for (let attempt = 0; attempt < 100 && !up; attempt++) {
          up = await redisAnswers('127.0.0.1', port, 200)
          if (!up) await new Promise(resolve => setTimeout(resolve, 50))
        }
        if (!up) throw new Error(`cluster node on port ${port} did not answer`)
      }
      await run('redis-cli', ['--cluster', 'create', ...ports.map(port => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'])
      await cluster.#untilOk()
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  async #untilOk (): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const states = await Promise.all(this.ports.map(async port => (await run('redis-cli', ['-p', String(port), 'cluster', 'info'])).stdout))
      if (states.every(info => info.includes('cluster_state:ok'))) return
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    throw new Error('the cluster did not reach cluster_state:ok')
  }

  async stop (): Promise<void> {
    await Promise.all(this.#processes.map(child => {
      if (child.exitCode !== null) return undefined
      const exited = new Promise(resolve => child.once('exit', resolve))
      child.ref()
      child.kill('SIGKILL')
      return exited
    }))
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
