import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import auditPlugin from '../plugins/audit.js'
import authenticatePlugin from '../plugins/authenticate.js'
import configPlugin from '../plugins/config.js'
import cookiesPlugin from '../plugins/cookies.js'
import csrfPlugin from '../plugins/csrf.js'
import errorsPlugin from '../plugins/errors.js'
import externalTokensPlugin from '../plugins/external-tokens.js'
import edgePlugin, { edgeServerOptions } from '../plugins/edge.js'
import jwtPlugin from '../plugins/jwt.js'
import oidcSignInPlugin from '../plugins/oidc-sign-in.js'
import openapiPlugin from '../plugins/openapi.js'
import presentedTokensPlugin from '../plugins/presented-tokens.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import schemasPlugin from '../plugins/schemas.js'
import storePlugin from '../plugins/store.js'
import sessionsPlugin from '../plugins/sessions.js'
import tokensPlugin from '../plugins/tokens.js'
import usersPlugin from '../plugins/users.js'
import adminRoutes from '../routes/admin.js'
import apiRoutes from '../routes/api.js'
import authRoutes from '../routes/auth.js'
import healthRoutes from '../routes/health.js'
import jwksRoutes from '../routes/jwks.js'
import oidcRoutes from '../routes/oidc.js'
import passwordRoutes from '../routes/password.js'
import revokeRoutes from '../routes/revoke.js'
import sessionRoutes from '../routes/sessions.js'
import { trustedProxies } from './client-address.js'
import type { Config } from './config.js'
import { AccessLog, loggerOptions, stdoutDestination } from './logger.js'

/** Path parameters longer than this are refused by the router, before any route (400). */
export const MAX_PARAM_LENGTH = 2048

/** Login bodies are tiny; anything near this is not a client of ours. */
export const BODY_LIMIT_BYTES = 16 * 1024

export interface AppOptions {
  /** where logs go (tests capture them); stdout when unset */
  logStream?: DestinationStream
}

/** Assembles the API. Production (src/server.ts) and every test build it through here. */
export async function buildApp (config: Config, options: AppOptions = {}): Promise<FastifyInstance> {
  const logStream = options.logStream ?? stdoutDestination()
  const app = Fastify({
    logger: loggerOptions(config.logLevel, logStream),
    logController: new AccessLog(logStream),
    bodyLimit: BODY_LIMIT_BYTES,
    // Path ids (sessions, users) no longer than this reach their route, which answers any id it does
    // not know with the same 404 however malformed; beyond it, the router's 400 (not 100: Fastify's
    // default would tell long ids from short ones).
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    trustProxy: config.trustProxy.length > 0 ? trustedProxies(config.trustProxy) : false,
    // Types are what the schema says: "123" is not a number, 123 is not a username.
    ajv: { customOptions: { coerceTypes: false } },
    // Answers no hook sees (malformed HTTP, a malformed URL, a drain), and slow-client bounds.
    ...edgeServerOptions(config),
  }).withTypeProvider<TypeBoxTypeProvider>()

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
  await app.register(edgePlugin)
  await app.register(storePlugin)
  await app.register(usersPlugin)
  await app.register(jwtPlugin)
  await app.register(cookiesPlugin)
  await app.register(presentedTokensPlugin)
  await app.register(tokensPlugin)
  await app.register(externalTokensPlugin)
  await app.register(oidcSignInPlugin)
  await app.register(sessionsPlugin)
  await app.register(csrfPlugin)
  // Before the limiter: a protected route's access check leaves in the same write as the count.
  await app.register(authenticatePlugin)
  await app.register(rateLimitPlugin)
  await app.register(openapiPlugin)
  await app.register(schemasPlugin)

  await app.register(healthRoutes)
  await app.register(jwksRoutes)
  await app.register(authRoutes, { prefix: '/auth' })
  await app.register(sessionRoutes, { prefix: '/auth' })
  await app.register(passwordRoutes, { prefix: '/auth' })
  await app.register(revokeRoutes, { prefix: '/auth' })
  await app.register(oidcRoutes, { prefix: '/auth' })
  await app.register(apiRoutes, { prefix: '/api' })
  await app.register(adminRoutes, { prefix: '/api/admin' })
}
