import type { FastifyReply, FastifyRequest, FastifySchema, onRequestAsyncHookHandler, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { InsufficientRoleError, InvalidAccessTokenError } from '../src/errors.js'
import type { AccountSummary } from '../src/store/index.js'
import type { Authenticated } from '../src/tokens/token-service.js'
import { authenticateAny } from '../src/access-check.js'
import { ExternalTokenRefusedError } from '../src/oidc/external-tokens.js'
import { OncePerWindow } from '../src/once-per-window.js'
import { DuplicateTokenCookieError, presentedAccessToken, refuseDuplicatedTokenCookies } from './presented-tokens.js'

/** OpenAPI security requirement of every protected route: either transport will do. */
export const ACCESS_TOKEN_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cookieAuth: [] }]

export interface Protection {
  /** a role the access token must carry (403 otherwise) */
  role?: string
  /** the handler needs the account (`request.account`): read with the denylist, in the same round trip */
  account?: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the access token and sets `request.user`, or answers 401. */
    authenticate: onRequestAsyncHookHandler
    /** preHandler hook: answers 403 unless `request.user` has the role. */
    requireRole (role: string): preHandlerHookHandler
    /**
     * Route options of a protected route: the schema with its OpenAPI security requirement, the
     * hooks that enforce it and the protection in the route's config, from one place so
     * documentation and protection cannot drift.
     */
    secured<S extends FastifySchema> (schema: S, protection?: Protection): {
      schema: S & { security: typeof ACCESS_TOKEN_SECURITY }
      config: { protection: Protection }
      onRequest: onRequestAsyncHookHandler
      preHandler: preHandlerHookHandler[]
    }
  }
  interface FastifyRequest {
    /** the account of a route protected with `{ account: true }`, read with the access check */
    account: AccountSummary | null
    /** the access check under way (started before the rate limit counts, awaited after) */
    accessCheck: Promise<Authenticated> | null
  }
  interface FastifyContextConfig {
    protection?: Protection
  }
}

const ignore = () => {}

/** Sets the RFC 6750 challenge a refusal of a protected request carries, and returns the error. The description is ours, never client input. */
function challenged (reply: FastifyReply, error: unknown): unknown {
  let challenge: string | undefined
  if (error instanceof InsufficientRoleError) challenge = `Bearer error="insufficient_scope", error_description="${error.message}"`
  else if (error instanceof DuplicateTokenCookieError) challenge = `Bearer error="invalid_request", error_description="${error.message}"`
  else if (error instanceof InvalidAccessTokenError) challenge = error.presented ? `Bearer error="invalid_token", error_description="${error.message}"` : 'Bearer'
  if (challenge !== undefined) reply.header('www-authenticate', challenge)
  return error
}

export default fp(async function authenticate (fastify) {
  const tokens = fastify.tokens
  const external = fastify.externalTokens
  // Fixed at start-up (OIDC_PROVIDERS_FILE): with no provider, the check is exactly our own.
  const externalTokensAccepted = external.enabled
  fastify.decorateRequest('account', null)
  fastify.decorateRequest('accessCheck', null)

  /** Starts the check of the presented access token; its outcome is for the route's hook to await. */
  function startAccessCheck (request: FastifyRequest, account: boolean): Promise<Authenticated> {
    let check: Promise<Authenticated>
    try {
      // A doubled token cookie may be another site's: refused even when a Bearer header decides.
      refuseDuplicatedTokenCookies(request)
      const presented = presentedAccessToken(request)
      if (presented === undefined) throw new InvalidAccessTokenError('Authentication required', false)
      check = externalTokensAccepted ? authenticateAny(tokens, external, presented.token, { account }) : tokens.authenticate(presented.token, { account })
    } catch (err) {
      check = Promise.reject(err instanceof Error ? err : new Error(String(err)))
    }
    check.catch(ignore) // awaited by the route's hook, or never (the rate limit answered 429 first)
    return check
  }

  // A protected route's check leaves before the API-wide limit counts (this hook is registered before
  // the limiter's), so the store read and the count share one write; the limiter still decides first.
  fastify.addHook('onRequest', function startProtectedRouteCheck (request, _reply, done) {
    const protection = request.routeOptions.config.protection
    if (protection !== undefined) request.accessCheck = startAccessCheck(request, protection.account === true)
    done()
  })

  /**
   * The route's own hook: awaits the check started early (or starts it, if the route's config did
   * not carry its protection). The refusals are decided here, and so is their RFC 6750 challenge
   * (the error handler only shapes answers).
   */
  function authenticateWith (account: boolean): onRequestAsyncHookHandler {
    return async function (request, reply) {
      try {
        const authenticated = await (request.accessCheck ?? startAccessCheck(request, account))
        request.user = authenticated.principal
        request.account = authenticated.account ?? null
      } catch (err) {
        // A misconfigured provider (a wrong audience, a new algorithm) refuses every one of its users:
        // one line a minute per issuer and reason says so, however many requests fail.
        if (err instanceof ExternalTokenRefusedError && refusalsReported.firstInWindow(`${err.issuer}\n${err.reason}`, Date.now() + 60_000)) {
          request.audit('external_token_refused', { issuer: err.issuer, reason: err.reason })
        }
        throw challenged(reply, err)
      }
    }
  }
  const refusalsReported = new OncePerWindow(1000)
  const authenticate = authenticateWith(false)

  function requireRole (role: string): preHandlerHookHandler {
    return function (request, reply, done) {
      // Used without `authenticate` before it, there is no user: refuse, never crash or let through.
      if (request.user === null) return done(challenged(reply, new InvalidAccessTokenError('Authentication required', false)) as Error)
      if (!request.user.roles.includes(role)) return done(challenged(reply, new InsufficientRoleError(role)) as Error)
      done()
    }
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireRole', requireRole)
  fastify.decorate('secured', function <S extends FastifySchema> (schema: S, protection: Protection = {}) {
    return {
      schema: { ...schema, security: ACCESS_TOKEN_SECURITY },
      config: { protection },
      onRequest: protection.account === true ? authenticateWith(true) : authenticate,
      // CSRF first: a forged state-changing request is refused before any role check or handler.
      preHandler: [fastify.csrfProtection, ...(protection.role === undefined ? [] : [requireRole(protection.role)])],
    }
  })
}, { name: 'authenticate', dependencies: ['tokens', 'external-tokens', 'cookies', 'csrf', 'presented-tokens'] })
