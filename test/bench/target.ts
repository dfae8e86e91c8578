/**
 * A server for test/bench/bench.ts to load, in its own process: `bare` is a plain Fastify JSON route
 * (the yardstick), `api` is this API as production builds it.
 */
import Fastify from 'fastify'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config.js'

const target = process.argv[2]
const app = target === 'bare'
  ? Fastify({ logger: false }).get('/hello', async () => ({ hello: 'world' }))
  : await buildApp(loadConfig(process.env))

await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`)
process.on('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })
