import type { DestinationStream, LoggerOptions } from 'pino'
import { clientAddress, type AddressedRequest } from './client-address.js'

/**
 * Everything that can carry a secret is censored, wherever a serializer or a log call puts it:
 * headers, cookies, bodies and our own objects.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'body.password',
  'body.refresh_token',
  'body.access_token',
  '*.password',
  '*.passwordHash',
  '*.refresh_token',
  '*.access_token',
  '*.refreshToken',
  '*.accessToken',
  '*.secret',
  '*.jwtSecret',
]

export function loggerOptions (level: string, stream?: DestinationStream): LoggerOptions & { stream?: DestinationStream } {
  return {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    serializers: { req: requestLine },
    ...(stream === undefined ? {} : { stream }),
  }
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
  return { method: request.method, url: request.url, host: request.host, remoteAddress: clientAddress(request), remotePort: request.socket?.remotePort }
}
