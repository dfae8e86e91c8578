import type { FastifyRequest, preHandlerHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError } from '../src/errors.js'
import { presentedAccessToken, presentedRefreshToken } from './presented-tokens.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])

export class CrossSiteRequestError extends ApiError {
  constructor () {
    super(403, 'CROSS_SITE_REQUEST', 'A cookie-authenticated request must come from this API\'s origin or one listed in CORS_ORIGINS')
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false` on a state-changing route that no cookie can authenticate (login): no CSRF check */
    csrf?: false
  }
  interface FastifyInstance {
    /**
     * preHandler hook of every route a cookie can authenticate: a state-changing request that
     * would be authenticated by one of our cookies must come from an allowed origin (403 otherwise).
     */
    csrfProtection: preHandlerHookHandler
  }
}

/**
 * Whether one of our cookies would authenticate this request: the access cookie when there is no
 * Bearer header, the refresh cookie when the body carries no refresh token. Tokens sent in a
 * header or a body cannot be forged by another site, so those requests need no check.
 */
function authenticatedByCookie (request: FastifyRequest): boolean {
  return presentedAccessToken(request)?.via === 'cookie' || presentedRefreshToken(request)?.via === 'cookie'
}

/** `scheme://host[:port]` of a URL as browsers compare origins; undefined for `null` and garbage. */
function originOf (url: string): string | undefined {
  try {
    const origin = new URL(url).origin
    return origin === 'null' ? undefined : origin
  } catch {
    return undefined
  }
}

/**
 * CSRF defence for cookie mode (docs/api.md, "CSRF"): the request's Origin (or, without one, its Referer's
 * origin) must be the API's own origin — scheme and host as the client used them, through trusted
 * proxies — or one of CORS_ORIGINS. A request with neither header is not from a browser. SameSite=
 * Strict cookies already stop other sites; this also stops sibling subdomains (same site).
 */
export default fp(async function csrf (fastify) {
  const allowed = new Set(fastify.config.corsOrigins)

  // Callback-style, as it runs on every protected request: no promise per request.
  const csrfProtection: preHandlerHookHandler = function (request, _reply, done) {
    if (SAFE_METHODS.has(request.method) || !authenticatedByCookie(request)) return done()
    const { origin, referer } = request.headers
    if (origin === undefined && referer === undefined) return done()
    const claimed = originOf(origin ?? referer ?? '')
    const own = originOf(`${request.protocol}://${request.host}`)
    if (claimed !== undefined && (claimed === own || allowed.has(claimed))) return done()
    // A Referer's path and query may hold another site's secrets: only its origin is logged.
    request.audit('csrf_refused', { origin: claimed ?? (origin === undefined ? '(unparseable Referer)' : origin.slice(0, 200)) })
    done(new CrossSiteRequestError())
  }

  fastify.decorate('csrfProtection', csrfProtection)

  // A state-changing route must say what it does about CSRF: protection is declared per route, so
  // a route that forgot it would be open to cross-site requests. Forgetting is a start-up error.
  fastify.addHook('onRoute', function (route) {
    const methods = [route.method].flat()
    if (methods.every(method => SAFE_METHODS.has(method)) || route.config?.csrf === false) return
    if ([route.preHandler ?? []].flat().includes(csrfProtection)) return
    throw new Error(`${methods.join(',')} ${route.url}: a state-changing route must declare its CSRF protection ` +
      '(preHandler: fastify.csrfProtection, or fastify.secured()), or `config: { csrf: false }` when no cookie can authenticate it')
  })
}, { name: 'csrf', dependencies: ['config', 'cookies', 'audit', 'presented-tokens'] })
