import { connect, createServer, type Server, type Socket } from 'node:net'
import { encodeCommand } from '../../src/store/resp.js'

/** A TIME, in the reply's shape ({seconds, microseconds} as bulk strings), shifted by ARGV[1] µs. */
const SHIFTED_TIME = `
local t = redis.call('TIME')
local us = tonumber(t[1]) * 1000000 + tonumber(t[2]) + tonumber(ARGV[1])
local s = math.floor(us / 1000000)
return {string.format('%d', s), string.format('%d', us - s * 1000000)}
`
/** TIME as a client sends it (one argument; ioredis writes command names in lower case). */
const TIME = /\*1\r\n\$4\r\ntime\r\n/gi

/**
 * A TCP proxy in front of one Redis whose TIME answers are `shiftMs` off, as if that server's clock
 * were: every TIME a client sends is replaced by a script that answers the shifted time. Everything
 * else passes through untouched. (A test helper: it assumes a TIME command arrives in one chunk, as
 * it does on loopback.)
 */
export class TimeShiftProxy {
  readonly #server: Server
  /** both ends of every proxied connection */
  readonly #sockets: Set<Socket>

  private constructor (server: Server, sockets: Set<Socket>) {
    this.#server = server
    this.#sockets = sockets
  }

  get port (): number {
    return (this.#server.address() as { port: number }).port
  }

  static async start (targetPort: number, shiftMs: number): Promise<TimeShiftProxy> {
    const shifted = encodeCommand(['EVAL', SHIFTED_TIME, 0, shiftMs * 1000])
    const sockets = new Set<Socket>()
    const server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1')
      for (const socket of [client, upstream]) {
        sockets.add(socket)
        socket.on('error', () => {})
        socket.on('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy() })
      }
      client.on('data', (chunk: Buffer) => upstream.write(Buffer.from(chunk.toString('latin1').replace(TIME, shifted), 'latin1')))
      upstream.pipe(client)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    return new TimeShiftProxy(server, sockets)
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise(resolve => this.#server.close(resolve))
  }
}
