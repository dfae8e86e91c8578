import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'
import { ApiError } from '../src/errors.js'

export class InvalidPreflightError extends ApiError {
  constructor () {
    super(400, 'INVALID_PREFLIGHT', 'A CORS preflight (OPTIONS) needs Origin and Access-Control-Request-Method headers')
  }
}

/** What a browser client on an allowed origin may read besides the simple response headers. */
export const EXPOSED_HEADERS = ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'WWW-Authenticate']
/** How long browsers may cache a preflight answer, seconds. */
export const PREFLIGHT_MAX_AGE = 600

/**
 * CORS for the exact origins in CORS_ORIGINS, with credentials (cookie mode). Any other origin
 * gets no Access-Control-Allow-Origin, so its scripts cannot read our answers. Registered before
 * the rate limiter, so that 429s carry the CORS headers and a browser client can read Retry-After.
 */
export default fp(async function cors (fastify) {
  const origins = fastify.config.corsOrigins
  if (origins.length > 0) {
    // What @fastify/cors's strictPreflight checks, answered in our JSON error shape rather than its
    // text/plain 400. It runs first: hooks run in the order they were added.
    fastify.addHook('onRequest', function (request, _reply, done) {
      const halfFormed = request.method === 'OPTIONS' && (request.headers.origin === undefined || request.headers['access-control-request-method'] === undefined)
      done(halfFormed ? new InvalidPreflightError() : undefined)
    })
  }
  await fastify.register(fastifyCors, {
    origin: origins.length > 0 ? origins : false,
    strictPreflight: false,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Auth-Mode'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE,
  })
}, { name: 'cors', dependencies: ['config', 'errors'] })
