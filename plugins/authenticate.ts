import type { FastifySchema, onRequestAsyncHookHandler, preHandlerAsyncHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { InsufficientRoleError, InvalidAccessTokenError } from '../src/errors.js'
import { presentedAccessToken, refuseDuplicatedTokenCookies } from './presented-tokens.js'

/** OpenAPI security requirement of every protected route: either transport will do. */
export const ACCESS_TOKEN_SECURITY: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { cookieAuth: [] }]

export interface Protection {
  /** a role the access token must carry (403 otherwise) */
  role?: string
}

declare module 'fastify' {
  interface FastifyInstance {
    /** onRequest hook: verifies the access token and sets `request.user`, or answers 401. */
    authenticate: onRequestAsyncHookHandler
    /** preHandler hook: answers 403 unless `request.user` has the role. */
    requireRole (role: string): preHandlerAsyncHookHandler
    /**
     * Route options of a protected route: the schema with its OpenAPI security requirement and
     * the hooks that enforce it, from one place so documentation and protection cannot drift.
     */
    secured<S extends FastifySchema> (schema: S, protection?: Protection): {
      schema: S & { security: typeof ACCESS_TOKEN_SECURITY }
      onRequest: onRequestAsyncHookHandler
      preHandler: preHandlerAsyncHookHandler[]
    }
  }
}

export default fp(async function authenticate (fastify) {
  const tokens = fastify.tokens

  const authenticate: onRequestAsyncHookHandler = async function (request) {
    // A doubled token cookie may be another site's: refused even when a Bearer header decides.
    refuseDuplicatedTokenCookies(request, { bearerChallenge: true })
    const presented = presentedAccessToken(request)
    if (presented === undefined) throw new InvalidAccessTokenError('Authentication required', false)
    request.user = await tokens.authenticate(presented.token)
  }

  function requireRole (role: string): preHandlerAsyncHookHandler {
    return async function (request) {
      // Used without `authenticate` before it, there is no user: refuse, never crash or let through.
      if (request.user === null) throw new InvalidAccessTokenError('Authentication required', false)
      if (!request.user.roles.includes(role)) throw new InsufficientRoleError(role)
    }
  }

  fastify.decorate('authenticate', authenticate)
  fastify.decorate('requireRole', requireRole)
  fastify.decorate('secured', function <S extends FastifySchema> (schema: S, protection: Protection = {}) {
    return {
      schema: { ...schema, security: ACCESS_TOKEN_SECURITY },
      onRequest: authenticate,
      // CSRF first: a forged state-changing request is refused before any role check or handler.
      preHandler: [fastify.csrfProtection, ...(protection.role === undefined ? [] : [requireRole(protection.role)])],
    }
  })
}, { name: 'authenticate', dependencies: ['tokens', 'cookies', 'csrf', 'presented-tokens'] })
