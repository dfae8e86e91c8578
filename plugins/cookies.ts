import fastifyCookie, { type CookieSerializeOptions } from '@fastify/cookie'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'

export const ACCESS_COOKIE = 'access_token'
export const REFRESH_COOKIE = 'refresh_token'

/** Every token cookie's attributes but its Path (and lifetime). */
const TOKEN_COOKIE_ATTRIBUTES: CookieSerializeOptions = { httpOnly: true, secure: true, sameSite: 'strict' }
/** The access cookie goes to every route; the refresh cookie only to /auth, where it is used. */
export const ACCESS_COOKIE_OPTIONS: CookieSerializeOptions = { ...TOKEN_COOKIE_ATTRIBUTES, path: '/' }
export const REFRESH_COOKIE_OPTIONS: CookieSerializeOptions = { ...TOKEN_COOKIE_ATTRIBUTES, path: '/auth' }

/**
 * A browser sign-in's state (routes/oidc.ts), bound to the browser that started it: sent only to
 * its provider's callback, and Lax, since the provider's redirect back is a cross-site navigation.
 */
export const SIGN_IN_STATE_COOKIE = 'oidc_state'
export function signInStateCookieOptions (provider: string): CookieSerializeOptions {
  return { httpOnly: true, secure: true, sameSite: 'lax', path: `/auth/oidc/${provider}/callback` }
}

export interface CookieTokens {
  accessToken: string
  accessTokenTtl: number
  refreshToken: string
  refreshTokenTtl: number
}

declare module 'fastify' {
  interface FastifyReply {
    /** Sets both token cookies (cookie transport), Max-Age = each token's lifetime. */
    setTokenCookies (tokens: CookieTokens): FastifyReply
    /** Expires both token cookies, with the attributes (Path!) they were set with. */
    clearTokenCookies (): FastifyReply
  }
}

/** @fastify/cookie, and the token cookies' one definition. */
export default fp(async function cookies (fastify) {
  await fastify.register(fastifyCookie)

  fastify.decorateReply('setTokenCookies', function (this: FastifyReply, tokens: CookieTokens) {
    return this
      .setCookie(ACCESS_COOKIE, tokens.accessToken, { ...ACCESS_COOKIE_OPTIONS, maxAge: tokens.accessTokenTtl })
      .setCookie(REFRESH_COOKIE, tokens.refreshToken, { ...REFRESH_COOKIE_OPTIONS, maxAge: tokens.refreshTokenTtl })
  })
  fastify.decorateReply('clearTokenCookies', function (this: FastifyReply) {
    return this
      .clearCookie(ACCESS_COOKIE, ACCESS_COOKIE_OPTIONS)
      .clearCookie(REFRESH_COOKIE, REFRESH_COOKIE_OPTIONS)
  })
}, { name: 'cookies' })
