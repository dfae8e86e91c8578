import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import helmet from 'helmet'
import { ApiError } from '../src/errors.js'

/**
 * What plugins/edge.ts answers with: helmet's headers, and the answers no hook sees — written here
 * in our error shape with the security headers, where Node or Fastify would write them bare.
 */

/**
 * The API serves JSON only, so its CSP allows nothing at all; Swagger UI under /docs replaces it
 * with its own (see plugins/openapi.ts).
 */
export const HELMET_OPTIONS = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
}

/**
 * helmet's headers for these options, read off its middleware once. They depend on nothing in the
 * request, so every answer gets the same list; @fastify/helmet 13 builds a new helmet middleware on
 * every request, which halved the throughput of a bare route (docs/decisions.md).
 */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = (() => {
  const headers: Array<[string, string]> = []
  const recorder = {
    setHeader (name: string, value: unknown) { headers.push([name.toLowerCase(), String(value)]) },
    removeHeader () {},
  }
  helmet(HELMET_OPTIONS)({} as IncomingMessage, recorder as unknown as ServerResponse, () => {})
  return headers
})()

/** Every header the edge puts on an answer, `Cache-Control: no-store` included. */
export const ALL_SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [...SECURITY_HEADERS, ['cache-control', 'no-store']]

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

export class ShuttingDownError extends ApiError {
  constructor () {
    super(503, 'SHUTTING_DOWN', 'This instance is shutting down; retry the request')
  }
}

export class InvalidPreflightError extends ApiError {
  constructor () {
    super(400, 'INVALID_PREFLIGHT', 'A CORS preflight (OPTIONS) needs Origin and Access-Control-Request-Method headers')
  }
}

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
  for (const [name, value] of ALL_SECURITY_HEADERS) reply.header(name, value)
  reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'Malformed request', code: error.code })
}

/** The server's `checkExpectation` answer: `Expect` other than 100-continue is a 417. */
export function answerUnsupportedExpectation (_request: IncomingMessage, response: ServerResponse): void {
  const body = errorBody(417, 'Only Expect: 100-continue is supported', 'UNSUPPORTED_EXPECTATION')
  for (const [name, value] of ALL_SECURITY_HEADERS) response.setHeader(name, value)
  response.writeHead(417, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' })
  response.end(body)
}
