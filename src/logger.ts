import type { DestinationStream, LoggerOptions } from 'pino'

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
    ...(stream === undefined ? {} : { stream }),
  }
}
