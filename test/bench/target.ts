/**
 * A server for test/bench/bench.ts to load, in its own process (pinned by the bench), telling the bench
 * its port over IPC. Variants:
 * - `api`: this API as production builds it (src/app.ts with the environment the bench gives);
 * - `bare`: a bare Fastify route answering the JSON /api/profile answers (the yardstick);
 * - `bare-jwt`: the same plus a cached fast-jwt verify of the Bearer token (a ceiling);
 * - `bare-redis`: the same plus one auto-pipelined Redis round trip (a ceiling);
 * - `express`: Express + passport-jwt + ioredis at its best (test/bench/express-peer.ts).
 */
import type { Server } from 'node:http'
import { createVerifier } from 'fast-jwt'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'
import { expressPeer } from './express-peer.js'

export const VARIANTS = ['api', 'bare', 'bare-jwt', 'bare-redis', 'express'] as const
export type Variant = typeof VARIANTS[number]

const variant = process.argv[2] as Variant
const env = process.env
const profile = JSON.parse(env.BENCH_PROFILE_JSON ?? '{}') as object

async function start (): Promise<{ server: Server, close: () => Promise<unknown> }> {
  if (variant === 'api') {
    const app = await buildApp(loadConfig(env))
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { server: app.server, close: () => app.close() }
  }
  if (variant === 'express') {
    const peer = expressPeer({
      redisUrl: String(env.REDIS_URL),
      keyPrefix: String(env.REDIS_KEY_PREFIX),
      secret: String(env.JWT_SECRET),
      issuer: 'token-auth-api',
      audience: 'token-auth-api',
      max: Number(env.RATE_LIMIT_MAX),
    })
    const server = peer.app.listen(0, '127.0.0.1')
    await new Promise(resolve => server.once('listening', resolve))
    return { server, close: async () => { server.close(); await peer.close() } }
  }
  const app = Fastify({ logger: false })
  const verify = createVerifier({ key: Buffer.from(String(env.JWT_SECRET)), algorithms: ['HS256'], cache: 10_000 })
  const redis = variant === 'bare-redis' ? new Redis(String(env.REDIS_URL), { enableAutoPipelining: true }) : undefined
  app.get('/api/profile', async (request) => {
    if (variant === 'bare-jwt') verify(String(request.headers.authorization).slice(7))
    if (redis !== undefined) await redis.exists(`${String(env.REDIS_KEY_PREFIX)}ceiling`)
    return profile
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { server: app.server, close: async () => { await app.close(); redis?.disconnect() } }
}

const { server, close } = await start()
const address = server.address()
process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
process.on('SIGTERM', () => { close().then(() => process.exit(0), () => process.exit(1)) })
