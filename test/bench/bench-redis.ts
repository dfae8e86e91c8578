/** The bench's own redis-server on a free port, pinned to the load generator's core (REDIS_URL where there is no redis-server). */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { freePort, redisAnswers } from '../helpers/redis.js'
import { pinnedTo } from './measure.js'

export interface BenchRedis {
  url: string
  usedMemory (): Promise<number>
  deleteKeys (prefix: string): Promise<void>
  stop (): Promise<void>
}

export async function benchRedis (core: number): Promise<BenchRedis> {
  let child: ChildProcess | undefined
  let url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
  const port = await freePort()
  const [command, args] = pinnedTo(core, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'])
  const started = spawn(command, args, { stdio: 'ignore' })
  const failed = once(started, 'error').then(() => false, () => false)
  for (let attempt = 0; attempt < 100; attempt++) {
    const answered = await Promise.race([redisAnswers('127.0.0.1', port, 200), failed])
    if (answered) {
      child = started
      url = `redis://127.0.0.1:${port}`
      break
    }
    if (started.exitCode !== null || attempt === 99) {
      console.error(`no private redis-server (using ${url}); Redis is then not pinned`)
      break
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  const client = new Redis(url)
  return {
    url,
    async usedMemory () {
      const info = await client.info('memory')
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)
    },
    async deleteKeys (prefix) {
      let cursor = '0'
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length > 0) await client.unlink(...keys)
        cursor = next
      } while (cursor !== '0')
    },
    async stop () {
      client.disconnect()
      if (child !== undefined && child.exitCode === null) {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    },
  }
}
