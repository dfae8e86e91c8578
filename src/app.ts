import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import auditPlugin from '../plugins/audit.js'
import authenticatePlugin from '../plugins/authenticate.js'
import configPlugin from '../plugins/config.js'
import cookiesPlugin from '../plugins/cookies.js'
import corsPlugin from '../plugins/cors.js'
import csrfPlugin from '../plugins/csrf.js'
import drainingPlugin from '../plugins/draining.js'
import errorsPlugin from '../plugins/errors.js'
import httpProtocolPlugin, { answerClientError, answerFrameworkError } from '../plugins/http-protocol.js'
import jwtPlugin from '../plugins/jwt.js'
import openapiPlugin from '../plugins/openapi.js'
import presentedTokensPlugin from '../plugins/presented-tokens.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import schemasPlugin from '../plugins/schemas.js'
import securityHeadersPlugin from '../plugins/security-headers.js'
import storePlugin from '../plugins/store.js'
import tokensPlugin from '../plugins/tokens.js'
import usersPlugin from '../plugins/users.js'
import apiRoutes from '../routes/api.js'
import authRoutes from '../routes/auth.js'
import healthRoutes from '../routes/health.js'
import { trustedProxies } from './client-address.js'
import type { Config } from './config.js'
import { loggerOptions } from './logger.js'

/** Login bodies are tiny; anything near this is not a client of ours. */
export const BODY_LIMIT_BYTES = 16 * 1024
/** How often Node looks for requests past their timeouts (its default, 30 s, would let them live that long). */
const TIMEOUT_CHECK_INTERVAL_MS = 1000

export interface AppOptions {
  /** where logs go (tests capture them); stdout when unset */
  logStream?: DestinationStream
}

/** Assembles the API. Production (src/server.ts) and every test build it through here. */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logStream),
    bodyLimit: BODY_LIMIT_BYTES,
    trustProxy: config.trustProxy.length > 0 ? trustedProxies(config.trustProxy) : false,
    // Types are what the schema says: "123" is not a number, 123 is not a username.
    ajv: { customOptions: { coerceTypes: false } },
    // Answers that no hook sees get our error shape and security headers all the same:
    // errors Fastify raises before routing (a malformed URL), requests Node's parser refuses, and
    // (answered by plugins, not by Fastify or Node) requests during a drain or without a Host.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: answerClientError,
    return503OnClosing: false,
    // Slow and stuck clients: a request must arrive whole within its timeouts (a 408 in our error
    // shape otherwise, by answerClientError), an idle kept-alive connection is closed after longer
    // than a load balancer keeps one (so the balancer, not we, closes it first).
    requestTimeout: config.http.requestTimeoutMs,
    keepAliveTimeout: config.http.keepAliveTimeoutMs,
    http: {
      requireHostHeader: false,
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(TIMEOUT_CHECK_INTERVAL_MS, config.http.headersTimeoutMs),
    },
  }).withTypeProvider<TypeBoxTypeProvider>()
  // Beyond this many open connections, new ones are dropped at once (0: no bound).
  if (config.http.maxConnections > 0) app.server.maxConnections = config.http.maxConnections

  // JSON only: a text/plain body is a 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain')

  try {
    await registerEverything(app, config)
  } catch (err) {
    // A refused start-up must not leave a Redis connection (or anything else) open behind it.
    await app.close().catch(() => {})
    throw err
  }
  return app
}

async function registerEverything (app: FastifyInstance, config: Config): Promise<void> {
  await app.register(configPlugin, { config })
  await app.register(auditPlugin)
  await app.register(errorsPlugin)
  // Order matters for the hooks: headers and CORS go on every answer, 429s included.
  await app.register(securityHeadersPlugin)
  await app.register(corsPlugin)
  await app.register(httpProtocolPlugin)
  await app.register(drainingPlugin)
  await app.register(storePlugin)
  await app.register(rateLimitPlugin)
  await app.register(usersPlugin)
  await app.register(jwtPlugin)
  await app.register(cookiesPlugin)
  await app.register(presentedTokensPlugin)
  await app.register(tokensPlugin)
  await app.register(csrfPlugin)
  await app.register(authenticatePlugin)
  await app.register(openapiPlugin)
  await app.register(schemasPlugin)

  await app.register(healthRoutes)
  await app.register(authRoutes, { prefix: '/auth' })
  await app.register(apiRoutes, { prefix: '/api' })
}
