import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from '../src/errors.js'
import { ALL_SECURITY_HEADERS, setSecurityHeaders } from './security-headers.js'

/**
 * Requests that break HTTP itself. Node answers some of them on its own, before any Fastify code:
 * with a bare status line, no body and none of our headers. Here they get our error shape and the
 * security headers every answer carries.
 */

/** Node's own mapping of what its parser refused (Fastify's default handler knows only the first two). */
function clientErrorStatus (code: string | undefined): number {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408
  if (code === 'HPE_HEADER_OVERFLOW') return 431
  if (code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW') return 413
  return 400
}

const CLIENT_ERROR_MESSAGES: Record<number, string> = {
  408: 'The request took too long to arrive',
  413: 'The request body framing is too large',
  431: 'The request headers are too large',
}

function errorBody (statusCode: number, message: string, code: string): string {
  return JSON.stringify({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message, code })
}

/**
 * The server's `clientError` answer (Fastify's `clientErrorHandler`): a request Node's parser
 * refused never becomes a Fastify request, so it is written to the socket here.
 */
export function answerClientError (this: FastifyInstance, err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const statusCode = clientErrorStatus(err.code)
  const body = errorBody(statusCode, CLIENT_ERROR_MESSAGES[statusCode] ?? 'Malformed HTTP request', err.code ?? 'CLIENT_ERROR')
  this.log.debug({ code: err.code }, 'malformed HTTP request')
  // As Node does: never write into an answer already under way on this socket.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage
  if (socket.writable && inFlight?.headersSent !== true) {
    const headers = ALL_SECURITY_HEADERS.map(([name, value]) => `${name}: ${value}\r\n`).join('')
    socket.write(`HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? 'Error'}\r\n${headers}content-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}

/** Fastify's `frameworkErrors`: errors it raises before routing (a malformed URL), which skip every hook. */
export function answerFrameworkError (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void {
  setSecurityHeaders(reply)
  reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'Malformed request', code: error.code })
}

export class MissingHostError extends ApiError {
  constructor () {
    super(400, 'MISSING_HOST', 'An HTTP/1.1 request must have a Host header')
  }
}

export class ConnectionRequestLimitError extends ApiError {
  override readonly retryAfter = 0
  constructor () {
    super(503, 'CONNECTION_REQUEST_LIMIT', 'This connection has served its requests; send this one on a new connection')
  }
}

/**
 * RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400. Node would send that bare (its
 * `requireHostHeader`, turned off in src/app.ts); this hook sends it as an ordinary error answer.
 * `Expect` other than 100-continue is a 417, which Node would also send bare.
 */
export default fp(async function httpProtocol (fastify) {
  // Callback-style, like every cheap check on each request: no promise per request.
  fastify.addHook('onRequest', function (request, _reply, done) {
    done(request.headers.host === undefined && request.raw.httpVersion === '1.1' ? new MissingHostError() : undefined)
  })

  // HTTP_MAX_REQUESTS_PER_SOCKET, counted here rather than by Node (its `maxRequestsPerSocket`
  // answers a pipelined request beyond the bound with a bare 503): the last allowed answer closes
  // the connection, and a request pipelined behind it gets a 503 in our shape.
  const maxRequests = fastify.config.http.maxRequestsPerSocket
  if (maxRequests > 0) {
    const served = new WeakMap<object, number>()
    fastify.addHook('onRequest', function (request, reply, done) {
      const socket = request.raw.socket
      const count = (served.get(socket) ?? 0) + 1
      served.set(socket, count)
      if (count >= maxRequests) reply.header('connection', 'close')
      done(count > maxRequests ? new ConnectionRequestLimitError() : undefined)
    })
  }

  fastify.server.on('checkExpectation', function (_request: IncomingMessage, response: ServerResponse) {
    const body = errorBody(417, 'Only Expect: 100-continue is supported', 'UNSUPPORTED_EXPECTATION')
    for (const [name, value] of ALL_SECURITY_HEADERS) response.setHeader(name, value)
    response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
    response.end(body)
  })
}, { name: 'http-protocol', dependencies: ['config', 'errors', 'security-headers'] })
