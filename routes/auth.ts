import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { presentedAccessToken } from '../plugins/authenticate.js'
import { REFRESH_COOKIE } from '../plugins/cookies.js'
import { AuthModeHeaders, LoginBody, RefreshTokenBody, TokenResponse } from '../schemas/auth.js'
import { NoContent, errorResponses } from '../schemas/common.js'
import type { IssuedTokens } from '../src/tokens/token-service.js'

type Transport = 'body' | 'cookie'

/**
 * Answers with a token pair in the chosen transport. Cookie transport: both tokens in HttpOnly
 * cookies, the access token also in the body (SPAs may keep it in memory), never the refresh token.
 */
function sendTokens (reply: FastifyReply, tokens: IssuedTokens, transport: Transport) {
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  reply.header('cache-control', 'no-store')
  const body: TokenResponse = { access_token: tokens.accessToken, token_type: 'Bearer', expires_in: tokens.accessTokenTtl }
  if (transport === 'cookie') reply.setTokenCookies(tokens)
  else body.refresh_token = tokens.refreshToken
  return body
}

/** The refresh token from the body, else from its cookie; the transport it came in decides the answer's. */
function presentedRefreshToken (body: RefreshTokenBody, cookies: Record<string, string | undefined>) {
  if (body.refresh_token !== undefined) return { token: body.refresh_token, transport: 'body' as const }
  const cookie = cookies[REFRESH_COOKIE]
  return cookie === undefined ? undefined : { token: cookie, transport: 'cookie' as const }
}

/** Refresh and logout may come with no body at all (the token is in a cookie): validate it as `{}`. */
async function bodyMayBeAbsent (request: FastifyRequest) {
  request.body ??= {}
}

const auth: FastifyPluginAsyncTypebox = async function (fastify) {
  const { tokens } = fastify

  fastify.post('/login', {
    schema: {
      headers: AuthModeHeaders,
      body: LoginBody,
      response: { 200: TokenResponse, ...errorResponses(400, 401, 413, 415, 503) },
    },
  }, async function (request, reply) {
    const issued = await tokens.login(request.body.username, request.body.password)
    return sendTokens(reply, issued, request.headers['x-auth-mode'] === 'cookie' ? 'cookie' : 'body')
  })

  fastify.post('/refresh', {
    preValidation: bodyMayBeAbsent,
    schema: {
      body: RefreshTokenBody,
      response: { 200: TokenResponse, ...errorResponses(400, 401, 413, 415, 503) },
    },
  }, async function (request, reply) {
    const presented = presentedRefreshToken(request.body, request.cookies)
    // An absent token is as invalid as a wrong one (same 401, same message).
    const issued = await tokens.refresh(presented?.token ?? '')
    return sendTokens(reply, issued, presented?.transport ?? 'body')
  })

  fastify.post('/logout', {
    preValidation: bodyMayBeAbsent,
    schema: {
      body: RefreshTokenBody,
      response: { 204: NoContent, ...errorResponses(400, 413, 415, 503) },
    },
  }, async function (request, reply) {
    await tokens.logout({
      accessToken: presentedAccessToken(request),
      refreshToken: presentedRefreshToken(request.body, request.cookies)?.token,
    })
    return reply.clearTokenCookies().code(204).send()
  })
}

export default auth
