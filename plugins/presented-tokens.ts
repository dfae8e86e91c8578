import { isIP } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { clientAddress } from '../src/client-address.js'
import { ApiError } from '../src/errors.js'
import { OncePerWindow } from '../src/once-per-window.js'
import { ACCESS_COOKIE, ACCESS_COOKIE_OPTIONS, REFRESH_COOKIE, REFRESH_COOKIE_OPTIONS } from './cookies.js'

/**
 * Which token a request presents, and how: the one place that decides it, for authentication, for
 * refresh and logout, and for the CSRF check (which must agree with both).
 */

export interface PresentedToken<Via extends string> {
  token: string
  via: Via
}

export type TokenCookieName = typeof ACCESS_COOKIE | typeof REFRESH_COOKIE
const TOKEN_COOKIE_NAMES: TokenCookieName[] = [ACCESS_COOKIE, REFRESH_COOKIE]

/**
 * The access token: the Bearer header when one is present (an invalid one is final: no fallback),
 * else the access cookie. Other Authorization schemes are not ours and leave the cookie to decide.
 */
export function presentedAccessToken (request: FastifyRequest): PresentedToken<'bearer' | 'cookie'> | undefined {
  const header = request.headers.authorization
  if (header !== undefined && /^bearer(?:\s|$)/i.test(header)) return { token: header.slice(6).trim(), via: 'bearer' }
  const cookie = request.cookies[ACCESS_COOKIE]
  return cookie === undefined ? undefined : { token: cookie, via: 'cookie' }
}

/** The refresh token: from the body, else from its cookie. The answer uses the transport it came in. */
export function presentedRefreshToken (request: FastifyRequest): PresentedToken<'body' | 'cookie'> | undefined {
  const body = request.body as { refresh_token?: unknown } | null | undefined
  if (typeof body === 'object' && body !== null && typeof body.refresh_token === 'string') return { token: body.refresh_token, via: 'body' }
  const cookie = request.cookies[REFRESH_COOKIE]
  return cookie === undefined ? undefined : { token: cookie, via: 'cookie' }
}

/**
 * The token cookies the Cookie header carries more than once. Browsers send every cookie whose
 * Domain and Path match, so a page on a sibling subdomain can add its own `access_token` for our
 * host (cookie tossing); the server cannot tell which is ours, so two of a name is a refusal.
 * Names are compared as the cookie parser reads them (spaces and tabs around them do not count).
 */
export function duplicatedTokenCookies (request: FastifyRequest): TokenCookieName[] {
  const header = request.headers.cookie
  if (header === undefined) return []
  let duplicated: TokenCookieName[] | undefined
  for (const name of TOKEN_COOKIE_NAMES) {
    // The hot path: a name that occurs at most once in the header cannot be a duplicate.
    const first = header.indexOf(name)
    if (first === -1 || first === header.lastIndexOf(name)) continue
    let count = 0
    for (const pair of header.split(';')) {
      const eq = pair.indexOf('=')
      if (eq !== -1 && pair.slice(0, eq).replace(/^[ \t]+|[ \t]+$/g, '') === name) count++
    }
    if (count > 1) (duplicated ??= []).push(name)
  }
  return duplicated ?? []
}

export const DUPLICATE_TOKEN_COOKIE_MESSAGE = 'The request carries a token cookie more than once (another site may have planted one); nothing was used'

export class DuplicateTokenCookieError extends ApiError {
  readonly cookies: TokenCookieName[]
  constructor (cookies: TokenCookieName[]) {
    super(401, 'DUPLICATE_TOKEN_COOKIE', DUPLICATE_TOKEN_COOKIE_MESSAGE)
    this.cookies = cookies
  }
}

/** Throws DuplicateTokenCookieError when a token cookie is doubled, whatever else the request carries. */
export function refuseDuplicatedTokenCookies (request: FastifyRequest): void {
  const duplicated = duplicatedTokenCookies(request)
  if (duplicated.length > 0) throw new DuplicateTokenCookieError(duplicated)
}

/** RFC 6265 cookie-path characters we are willing to echo (no `;`, controls or spaces). */
const SAFE_PATH = /^\/[A-Za-z0-9._~!$&'()*+,=:@%/-]*$/
/** A host name the cookie library accepts as a Domain: letter-digit-hyphen labels, none starting or ending in `-`. */
const HOSTNAME = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
const MAX_PATH_PREFIXES = 8
const MAX_DOMAINS = 4
/** Expiries in one answer at most: past a few KB of headers, proxies refuse the answer (nginx: 4–8 KB). */
export const MAX_EXPIRIES = 24

/** Where the API's own cookie of each name lives (host-only): never expired by a refusal. */
const OWN_PATH: Record<TokenCookieName, string> = { [ACCESS_COOKIE]: ACCESS_COOKIE_OPTIONS.path ?? '/', [REFRESH_COOKIE]: REFRESH_COOKIE_OPTIONS.path ?? '/auth' }

export interface CookieScope { name: TokenCookieName, domain?: string, path: string }

/**
 * Where a tossed copy of the doubled cookies can live: under every Domain a page of the site could
 * set it for, at every Path the request's path matches (`/api/profile`, `/api/`, `/api`, `/`). Most
 * likely first, as at most MAX_EXPIRIES are returned: the parents of this host with at least two
 * labels, shortest first (what a sibling subdomain can set; the browser refuses public suffixes by
 * itself), then the host itself (only a page on a subdomain of it can set that), then host-only.
 * Never the host-only cookie at the API's own path: that one is the client's, and expiring it would
 * leave the browser with only the planted one if it refused one of these expiries.
 */
export function tossedCookieScopes (path: string, hostname: string, names: TokenCookieName[]): CookieScope[] {
  const host = hostname.toLowerCase()
  const domains: Array<string | undefined> = []
  if (HOSTNAME.test(host) && isIP(host) === 0) {
    const labels = host.split('.')
    for (let i = labels.length - 2; i >= 1 && domains.length < MAX_DOMAINS - 1; i--) domains.push(labels.slice(i).join('.'))
    domains.push(host)
  }
  domains.push(undefined)

  const paths = ['/']
  const segments = path.split('/').slice(1)
  let prefix = ''
  for (const [i, segment] of segments.entries()) {
    if (segment === '' || paths.length >= MAX_PATH_PREFIXES) break
    prefix += `/${segment}`
    paths.push(prefix)
    // `/api/` matches `/api/profile` but not `/api`.
    if (i < segments.length - 1) paths.push(`${prefix}/`)
  }
  const safe = paths.slice(0, MAX_PATH_PREFIXES).filter(p => SAFE_PATH.test(p)).reverse()

  const scopes: CookieScope[] = []
  for (const domain of domains) {
    for (const p of safe) {
      for (const name of names) {
        if (domain === undefined && p === OWN_PATH[name]) continue
        scopes.push(domain === undefined ? { name, path: p } : { name, domain, path: p })
      }
    }
  }
  return scopes.slice(0, MAX_EXPIRIES)
}

declare module 'fastify' {
  interface FastifyReply {
    /**
     * The answer to doubled token cookies: expires the planted copies of the doubled ones wherever
     * this request could have carried them, and writes a `cookie_tossing` audit line (once per
     * client and window).
     */
    expireTossedTokenCookies (cookies: TokenCookieName[]): FastifyReply
  }
}

const AUDIT_WINDOW_MS = 60_000
/** Clients whose `cookie_tossing` line was written this window, per instance. */
const REPORTED_CLIENTS_MAX = 10_000

/** Doubled token cookies: refused (the functions above) and answered here, on every route. */
export default fp(async function presentedTokens (fastify) {
  const reported = new OncePerWindow(REPORTED_CLIENTS_MAX)

  fastify.decorateReply('expireTossedTokenCookies', function (this: FastifyReply, cookies: TokenCookieName[]) {
    const request = this.request
    const ip = clientAddress(request)
    if (reported.firstInWindow(ip, Date.now() + AUDIT_WINDOW_MS)) request.audit('cookie_tossing', { ip, cookies })
    const path = (request.raw.url ?? '/').split('?')[0] ?? '/'
    // Max-Age=0 alone expires a cookie; Secure, so that it may replace a Secure one.
    for (const { name, ...scope } of tossedCookieScopes(path, request.hostname, cookies)) this.setCookie(name, '', { secure: true, maxAge: 0, ...scope })
    return this
  })

  // A refusal thrown from a hook or handler still expires what was tossed.
  fastify.addHook('onError', function (_request, reply, error, done) {
    if (error instanceof DuplicateTokenCookieError) reply.expireTossedTokenCookies(error.cookies)
    done()
  })
}, { name: 'presented-tokens', dependencies: ['cookies', 'audit'] })
