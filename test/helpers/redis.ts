import { spawn, type ChildProcess } from 'node:child_process'
import { connect, createServer, Socket, type AddressInfo, type Server } from 'node:net'
import { randomId, sha256 } from '../../src/ids.js'
import { RedisStore, type AuthStore } from '../../src/store/index.js'
import { Redis } from 'ioredis'

/** Sends PING over a raw socket; true when Redis answers PONG within the timeout. */
export function redisAnswers (host: string, port: number, timeoutMs = 500, password?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (answer: boolean) => { socket.destroy(); resolve(answer) }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('error', () => done(false))
    // With a password, AUTH's +OK comes first: PONG is looked for in all that arrives.
    let received = ''
    socket.on('data', (data) => {
      received += data.toString()
      if (received.includes('+PONG')) done(true)
      else if (received.startsWith('-') || (password === undefined && received.length > 0)) done(false)
    })
    socket.connect(port, host, () => socket.write(password === undefined ? 'PING\r\n' : `AUTH ${password}\r\nPING\r\n`))
  })
}

export function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A redis-server of the test's own, on a free loopback port: it may be paused, stopped, restarted. */
export class PrivateRedis {
  readonly port: number
  #process: ChildProcess | undefined

  private constructor (port: number) {
    this.port = port
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start (): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort())
    await redis.restart()
    return redis
  }

  /** (Re)starts the server on the same port, empty: nothing is kept on disk. */
  async restart (...extraArgs: string[]): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], { stdio: 'ignore' })
    const failed = new Promise<never>((_resolve, reject) => {
      child.once('error', (err) => reject(new Error(`cannot start redis-server (${err.message}); install Redis (apt-get install redis-server) or set REDIS_URL`)))
    })
    this.#process = child
    // Never outlive the test process, even when a test forgets to stop it.
    child.unref()
    process.once('exit', () => child.kill('SIGKILL'))
    for (let attempt = 0; attempt < 100; attempt++) {
      if (await Promise.race([redisAnswers('127.0.0.1', this.port, 200), failed])) return
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    throw new Error(`redis-server on port ${this.port} did not answer`)
  }

  /** SIGSTOP: the socket stays open, nothing answers (a stalled Redis). */
  pause (): void {
    this.#process?.kill('SIGSTOP')
  }

  resume (): void {
    this.#process?.kill('SIGCONT')
  }

  async stop (): Promise<void> {
    const child = this.#process
    if (child === undefined || child.exitCode !== null) return
    this.#process = undefined
    const exited = new Promise(resolve => child.once('exit', resolve))
    child.ref() // unref'd at start; an unref'd child would let the process exit while we wait for it
    // SIGKILL alone: it ends a stopped (paused) server too, which SIGCONT would first let answer.
    child.kill('SIGKILL')
    await exited
  }
}

/**
 * A TCP proxy in front of a Redis that holds every reply back for `delayMs`: a Redis that answers,
 * slowly (a loaded or distant server). Replies keep their order. `silenceExisting()` makes the
 * connections open now go silent both ways, open but dead (a vanished host, a black-holing network:
 * not even a FIN is answered); new connections work.
 */
export class SlowRedisProxy {
  readonly #server: Server
  readonly #sockets: Set<Socket>
  readonly #silenced: WeakSet<Socket>
  readonly #counts: { held: number }
  readonly port: number

  private constructor (server: Server, sockets: Set<Socket>, silenced: WeakSet<Socket>, counts: { held: number }) {
    this.#server = server
    this.#sockets = sockets
    this.#silenced = silenced
    this.#counts = counts
    this.port = (server.address() as AddressInfo).port
  }

  /** Chunks Redis has answered that the proxy is holding back now (its delay not yet over). */
  get held (): number {
    return this.#counts.held
  }

  silenceExisting (): void {
    for (const socket of this.#sockets) this.#silenced.add(socket)
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start (upstreamUrl: string, delayMs: number): Promise<SlowRedisProxy> {
    const upstream = new URL(upstreamUrl)
    const sockets = new Set<Socket>()
    const silenced = new WeakSet<Socket>()
    const counts = { held: 0 }
    const server = createServer({ allowHalfOpen: true }, (client) => {
      const redis = connect(Number(upstream.port || 6379), upstream.hostname)
      for (const socket of [client, redis]) {
        sockets.add(socket)
        socket.on('close', () => { sockets.delete(socket); client.destroy(); redis.destroy() })
        socket.on('error', () => {})
      }
      client.on('end', () => { if (!silenced.has(client)) redis.end() })
      client.on('data', (chunk) => { if (!silenced.has(client)) redis.write(chunk) })
      redis.on('data', (chunk) => {
        counts.held++
        setTimeout(() => {
          counts.held--
          if (!client.destroyed && !silenced.has(client)) client.write(chunk)
        }, delayMs)
      })
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return new SlowRedisProxy(server, sockets, silenced, counts)
  }

  async stop (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise(resolve => this.#server.close(resolve))
  }
}

let shared: Promise<string> | undefined
let privateInstance: PrivateRedis | undefined

/**
 * The Redis the suite talks to: REDIS_URL when set; else the one on 127.0.0.1:6379 if it answers;
 * else a private redis-server on a free port; else an error saying how to get one.
 */
export function testRedisUrl (): Promise<string> {
  shared ??= (async () => {
    if (process.env.REDIS_URL !== undefined && process.env.REDIS_URL !== '') return process.env.REDIS_URL
    if (await redisAnswers('127.0.0.1', 6379)) return 'redis://127.0.0.1:6379'
    privateInstance = await PrivateRedis.start()
    return privateInstance.url
  })()
  return shared
}

/** Stops the private instance testRedisUrl may have started (call from a test file's teardown). */
export async function stopTestRedis (): Promise<void> {
  await privateInstance?.stop()
}

/** A fresh key prefix: tests share a Redis, so each app gets its own namespace and cleans only it. */
export function uniqueKeyPrefix (): string {
  return `test:${randomId()}:auth:`
}

export async function withRedis<T> (url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
  await redis.connect()
  try {
    return await use(redis)
  } finally {
    redis.disconnect()
  }
}

export async function keysUnder (redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

/** Deletes what one test wrote, by prefix; never FLUSHes a Redis the test did not start. */
export async function deleteKeysUnder (url: string, prefix: string): Promise<void> {
  await withRedis(url, async (redis) => {
    const keys = await keysUnder(redis, prefix)
    if (keys.length > 0) await redis.del(...keys)
  })
}

/** A RedisStore on the suite's Redis under a fresh key prefix, closed and cleaned up after the test. */
export async function testRedisStore (t: { teardown (fn: () => unknown): void }, keyPrefix = uniqueKeyPrefix()): Promise<{ store: RedisStore, url: string, keyPrefix: string }> {
  const url = await testRedisUrl()
  const store = await RedisStore.connect({ url, keyPrefix })
  t.teardown(async () => {
    await store.close()
    await deleteKeysUnder(url, keyPrefix)
  })
  return { store, url, keyPrefix }
}

/** An account and one live session of it (a minute long), written straight into a store. */
export async function accountWithSession (store: AuthStore, username = 'u') {
  const userId = randomId()
  await store.createUserIfAbsent({ id: userId, username, email: null, roles: ['user'], passwordHash: 'h' })
  const session = { userId, sessionId: randomId(), refreshHash: sha256(randomId()) }
  await store.createSession({ ...session, expiresAt: Date.now() + 60_000, maxSessionsPerUser: 10, accessTokenTtl: 900 })
  return session
}
