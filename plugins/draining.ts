import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import { ApiError } from '../src/errors.js'

export class ShuttingDownError extends ApiError {
  constructor () {
    super(503, 'SHUTTING_DOWN', 'This instance is shutting down; retry the request')
  }
}

/** How long a request whose headers had arrived when the drain began may take to send its body. */
export const DRAIN_BODY_GRACE_MS = 1000
/** How often the drain looks for connections it can close. */
const DRAIN_SWEEP_INTERVAL_MS = 100

/** Node's record of the answer a socket is busy with (null between requests). */
type HttpSocket = Socket & { _httpMessage?: (ServerResponse & { req?: IncomingMessage }) | null }

/**
 * What the drain does with one connection: keep it while a received request is being answered,
 * close it otherwise. A request counts as received once its headers and its whole body have
 * arrived; one still arriving gets DRAIN_BODY_GRACE_MS from the start of the drain.
 */
function drainable (socket: HttpSocket, graceOver: boolean): boolean {
  const answer = socket._httpMessage
  // No answer under way: idle, or a request whose headers have not all arrived.
  if (answer === undefined || answer === null) return true
  // Answered: the last bytes have left, the connection is idle from now on.
  if (answer.writableFinished) return true
  return answer.req?.complete !== true && graceOver
}

/**
 * The drain (SIGTERM: the server stops listening and answers what it has received) ends within
 * about a second of the last received request's answer, whatever the connections still open are
 * doing: idle ones, ones that became idle later (their answer's last write came after Node closed
 * the idle connections, once, at the start), and ones whose request never finished arriving (a
 * slow or stuck client) are closed. Every answer during the drain carries `Connection: close`, and
 * a request that still arrives on a kept-alive connection is answered 503 with `Connection: close`,
 * so the client retries elsewhere. Fastify's own answer for that (`return503OnClosing`, turned off
 * in src/app.ts) is written straight to the socket, without our headers or error shape; this one is
 * an ordinary error answer, after the security-header and CORS hooks.
 */
export default fp(async function draining (fastify) {
  let closing = false
  const connections = new Set<HttpSocket>()
  fastify.server.on('connection', (socket: HttpSocket) => {
    connections.add(socket)
    socket.once('close', () => connections.delete(socket))
  })

  let sweeper: NodeJS.Timeout | undefined
  fastify.addHook('preClose', async () => {
    closing = true
    const started = Date.now()
    const sweep = () => {
      const graceOver = Date.now() - started >= DRAIN_BODY_GRACE_MS
      for (const socket of connections) {
        if (!drainable(socket, graceOver)) continue
        // Whatever is still buffered leaves first; a socket with nothing left to write closes at once.
        if (socket.writableLength > 0) socket.end()
        else socket.destroy()
      }
    }
    sweeper = setInterval(sweep, DRAIN_SWEEP_INTERVAL_MS)
    sweeper.unref()
  })
  fastify.addHook('onClose', async () => { clearInterval(sweeper) })

  fastify.addHook('onRequest', function (_request, reply, done) {
    if (!closing) return done()
    reply.header('connection', 'close').header('retry-after', '1')
    done(new ShuttingDownError())
  })
  // The answers to requests in flight close their connections too.
  fastify.addHook('onSend', function (request, reply, payload, done) {
    if (closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'draining', dependencies: ['errors', 'security-headers', 'cors'] })
