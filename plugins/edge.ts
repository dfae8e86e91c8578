import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import fastifyCors from '@fastify/cors'
import type { FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../src/config.js'
import {
  ConnectionRequestLimitError, InvalidPreflightError, MissingHostError, SECURITY_HEADERS, ShuttingDownError,
  answerClientError, answerFrameworkError, answerUnsupportedExpectation,
} from './edge-answers.js'

/**
 * The edge: what every answer carries (helmet's headers, `Cache-Control: no-store`, CORS) and the
 * answers no route sees — malformed HTTP, a missing Host, an unsupported Expect, a half-formed
 * preflight, a connection past its request bound, a request during the drain — in our error shape,
 * with those headers, where Node or Fastify would answer bare. Two onRequest hooks (one before
 * @fastify/cors, one after, so 503s during the drain are readable cross-origin) and one onSend.
 */

/** How long a request whose headers had arrived when the drain began may take to send its body. */
export const DRAIN_BODY_GRACE_MS = 1000
/** How often the drain looks for connections it can close. */
const DRAIN_SWEEP_INTERVAL_MS = 100
/** How often Node looks for requests past their timeouts (its default, 30 s, would let them live that long). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000
/** What a browser client on an allowed origin may read besides the simple response headers. */
export const EXPOSED_HEADERS = ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'WWW-Authenticate']
/** How long browsers may cache a preflight answer, seconds. */
export const PREFLIGHT_MAX_AGE = 600

/**
 * The server options the edge needs from src/app.ts: the bare answers routed through it, and the
 * slow-client bounds (a request must arrive whole within its timeouts, a 408 in our shape otherwise;
 * an idle kept-alive connection is closed after longer than a load balancer keeps one).
 */
export function edgeServerOptions (config: Config): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler' | 'return503OnClosing' | 'requestTimeout' | 'keepAliveTimeout'> & { http: ServerOptions } {
  return {
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    // A request that races the drain gets this plugin's 503, in our shape.
    return503OnClosing: false,
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    http: {
      // RFC 9112 §3.2's 400 for a missing Host is answered by the edge, not bare by Node.
      requireHostHeader: false,
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, config.http.headersTimeoutMs),
    },
  }
}

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

export default fp(async function edge (fastify) {
  const { config } = fastify
  const corsOn = config.corsOrigins.length > 0

  // Before CORS: the security headers (on the raw response, so a route's own `reply.header` wins:
  // Swagger UI sets its CSP so), and @fastify/cors's strictPreflight check in our JSON shape rather
  // than its text/plain 400. Callback-style, like every cheap check: no promise per request.
  fastify.addHook('onRequest', function edgeFirst (request, reply, done) {
    for (const [name, value] of SECURITY_HEADERS) reply.raw.setHeader(name, value)
    done(corsOn && request.method === 'OPTIONS' && (request.headers.origin === undefined || request.headers['access-control-request-method'] === undefined)
      ? new InvalidPreflightError()
      : undefined)
  })

  // CORS for the exact origins in CORS_ORIGINS, with credentials (cookie mode); any other origin
  // gets no Access-Control-Allow-Origin. Before the rate limiter, so 429s are readable too.
  await fastify.register(fastifyCors, {
    origin: corsOn ? config.corsOrigins : false,
    strictPreflight: false,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Auth-Mode'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE,
  })

  // The drain (SIGTERM: the server stops listening and answers what it has received) ends within
  // about a second of the last received request's answer: idle connections, ones that became idle
  // later, and ones whose request never finished arriving are closed. Every answer during the drain
  // carries `Connection: close`; a request still arriving on a kept-alive connection gets a 503.
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
    sweeper = setInterval(() => {
      const graceOver = Date.now() - started >= DRAIN_BODY_GRACE_MS
      for (const socket of connections) {
        if (!drainable(socket, graceOver)) continue
        // Whatever is still buffered leaves first; a socket with nothing left to write closes at once.
        if (socket.writableLength > 0) socket.end()
        else socket.destroy()
      }
    }, DRAIN_SWEEP_INTERVAL_MS)
    sweeper.unref()
  })
  fastify.addHook('onClose', async () => { clearInterval(sweeper) })

  // HTTP_MAX_REQUESTS_PER_SOCKET, counted here rather than by Node (its `maxRequestsPerSocket`
  // answers a pipelined request beyond the bound with a bare 503): the last allowed answer closes
  // the connection, and a request pipelined behind it gets a 503 in our shape.
  const maxRequests = config.http.maxRequestsPerSocket
  const served = new WeakMap<object, number>()

  // After CORS: a missing Host (RFC 9112 §3.2), the per-connection bound, the drain.
  fastify.addHook('onRequest', function edgeAfterCors (request, reply, done) {
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') return done(new MissingHostError())
    if (maxRequests > 0) {
      const socket = request.raw.socket
      const count = (served.get(socket) ?? 0) + 1
      served.set(socket, count)
      if (count >= maxRequests) reply.header('connection', 'close')
      if (count > maxRequests) return done(new ConnectionRequestLimitError())
    }
    if (closing) {
      reply.header('connection', 'close').header('retry-after', '1')
      return done(new ShuttingDownError())
    }
    done()
  })

  // Every answer is `Cache-Control: no-store` unless a route chose otherwise (Swagger UI's static
  // files do): bodies carry tokens and personal data, error answers must not be replayed by caches.
  fastify.addHook('onSend', function edgeOnSend (request, reply, payload, done) {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    if (closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    done(null, payload)
  })

  fastify.server.on('checkExpectation', answerUnsupportedExpectation)
  // Beyond this many open connections, new ones are dropped at once (0: no bound).
  if (config.http.maxConnections > 0) fastify.server.maxConnections = config.http.maxConnections
}, { name: 'edge', dependencies: ['config', 'errors'] })
