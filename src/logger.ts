import { hostname } from 'node:os'
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino'
import { clientAddress, type AddressedRequest } from './client-address.js'

/** Keys (any case) whose values never reach the log: headers, cookies, bodies and our own objects. */
const SECRET_KEYS = new Set([
  'authorization', 'cookie', 'set-cookie',
  'password', 'passwordhash', 'current_password', 'new_password',
  'refresh_token', 'access_token', 'refreshtoken', 'accesstoken', 'token',
  'secret', 'jwtsecret', 'jwt_secret', 'previoussecrets', 'jwt_previous_secrets', 'privatekey', 'private',
])
export const REDACTED = '[redacted]'
/** How deep into a log line's plain objects and arrays secrets are looked for. */
const REDACT_DEPTH = 6

/** Top-level keys whose values a serializer of ours turns into safe fields (and censors itself). */
const SERIALIZED_KEYS = new Set(['req', 'res', 'err'])

/**
 * The log line with every value under a secret key censored, at the top or nested in objects and
 * arrays (down to REDACT_DEPTH) — what JSON.stringify would write, so any object's own enumerable
 * keys. The caller's objects are never changed: what differs is copied (as a plain object). `req`,
 * `res` and `err` are left to their serializers, which pick safe fields (`err` is censored there).
 * pino's own `redact` does this by paths, but its wildcard paths (`*.password`) ran every value of
 * every line through the redactor: 13.5 µs a line against ~6 (docs/decisions.md).
 */
export function withoutSecrets<T> (value: T, depth = REDACT_DEPTH, topLevel = true): T {
  if (depth === 0 || typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined
    value.forEach((item: unknown, i) => {
      const clean = withoutSecrets(item, depth - 1, false)
      if (clean !== item) (copy ??= [...value])[i] = clean
    })
    return (copy ?? value) as T
  }
  let copy: Record<string, unknown> | undefined
  for (const [key, item] of Object.entries(value)) {
    if (topLevel && SERIALIZED_KEYS.has(key)) continue
    const clean = SECRET_KEYS.has(key.toLowerCase()) ? REDACTED : withoutSecrets(item, depth - 1, false)
    if (clean !== item) (copy ??= { ...value as Record<string, unknown> })[key] = clean
  }
  return (copy ?? value) as T
}

/** Lines are written in chunks of about this many bytes, and at least this often. */
const LOG_CHUNK_BYTES = 4096
const LOG_FLUSH_INTERVAL_MS = 100

/**
 * stdout, buffered: under load one write carries a dozen lines instead of a write per line, and no
 * line waits longer than LOG_FLUSH_INTERVAL_MS. The writes are synchronous, as pino's default: an
 * asynchronous write hands each chunk to libuv's thread pool, which cost more than the write itself.
 * pino flushes what is left when the process exits; a process killed outright (SIGKILL, out of
 * memory) loses at most that last chunk.
 */
export function stdoutDestination (): DestinationStream {
  const destination = pino.destination({ dest: 1, sync: true, minLength: LOG_CHUNK_BYTES })
  const timer = setInterval(() => {
    // flush() throws while the destination is still opening or after it has ended: nothing to do then.
    try {
      destination.flush()
    } catch {}
  }, LOG_FLUSH_INTERVAL_MS)
  timer.unref()
  destination.on('close', () => clearInterval(timer))
  // pino registers no exit flush for a synchronous destination: the last chunk is written here.
  process.once('exit', () => {
    try {
      destination.flushSync()
    } catch {}
  })
  return destination
}

export function loggerOptions (level: string, stream: DestinationStream = stdoutDestination()): LoggerOptions & { stream: DestinationStream } {
  return {
    level,
    // Child-logger bindings are not formatted by pino: bind identifiers only (Fastify binds `reqId`).
    formatters: { log: object => withoutSecrets(object) },
    // pino's error serializer copies an error's own properties: censored like any line.
    serializers: { req: requestLine, err: (err: Error) => withoutSecrets(pino.stdSerializers.err(err), REDACT_DEPTH, false) },
    stream,
  }
}

/** What pino writes after `time` on every line: its default `base`. */
const BASE_FIELDS = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())}`

/**
 * One access-log line per request, once its answer has been sent: `request completed` with the
 * request line, the status and the time taken. Fastify's default writes two lines per request; the
 * arrival (`incoming request`) is logged at debug.
 *
 * The line of a request that succeeded is written here, to the logger's own stream, as pino would
 * write it through the request's logger (test/logging.test.ts holds the two side by side): through
 * pino — serializers, the secrets formatter, its generic JSON — it cost 2.5 µs, a tenth of a protected
 * request's CPU. Every field is either a number or JSON.stringify's, and none can hold a secret: the
 * secrets formatter does not look into `req` and `res` either (their serializers pick safe fields).
 */
export class AccessLog extends LogController {
  readonly #stream: DestinationStream

  constructor (stream: DestinationStream) {
    super()
    this.#stream = stream
  }

  override incomingRequest (request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request')
  }

  override requestCompleted (error: Error | null, request: FastifyRequest, reply: FastifyReply): void {
    if (error) reply.log.error({ req: request, res: reply, err: error, responseTime: reply.elapsedTime }, 'request errored')
    else if ((reply.log as Logger).isLevelEnabled('info')) this.#stream.write(completedLine(request, reply))
  }
}

/** pino's `request completed` line at info, bound to the request's id, as one string. */
function completedLine (request: FastifyRequest, reply: FastifyReply): string {
  const req = requestLine(request as unknown as LoggedRequest)
  return `{"level":30,"time":${Date.now()}${BASE_FIELDS},"reqId":${JSON.stringify(request.id)}` +
    `,"req":{"method":${JSON.stringify(req.method)},"url":${JSON.stringify(req.url)},"host":${JSON.stringify(req.host)}` +
    `,"remoteAddress":${JSON.stringify(req.remoteAddress)}${req.remotePort === undefined ? '' : `,"remotePort":${req.remotePort}`}}` +
    `,"res":{"statusCode":${reply.statusCode}},"responseTime":${reply.elapsedTime},"msg":"request completed"}\n`
}

/** Query parameters whose values are secrets: a sign-in callback's code and state, a token sent in a URL. */
const SECRET_QUERY = /([?&](?:code|state|id_token|access_token|refresh_token|token)=)[^&#]*/gi

/** The URL with the values of secret query parameters redacted (the API's own routes take none in the path). */
export function loggedUrl (url: string): string {
  return url.includes('?') ? url.replace(SECRET_QUERY, `$1${REDACTED}`) : url
}

interface LoggedRequest extends AddressedRequest {
  method: string
  url: string
  host: string
  socket?: { remotePort?: number | undefined } | undefined
}

/**
 * Fastify's request line, with the client address as the rate limits count it: a forwarded value
 * is logged normalised (no port, the hop's address for garbage), never as the client wrote it.
 */
function requestLine (request: LoggedRequest) {
  return { method: request.method, url: loggedUrl(request.url), host: request.host, remoteAddress: clientAddress(request), remotePort: request.socket?.remotePort }
}
