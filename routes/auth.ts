import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { REFRESH_COOKIE } from '../plugins/cookies.js'
import { duplicatedTokenCookies, presentedAccessToken, presentedRefreshToken, refuseDuplicatedTokenCookies } from '../plugins/presented-tokens.js'
import { AuthModeHeaders, LoginBody, RefreshTokenBody, TokenResponse } from '../schemas/auth.js'
import { errorResponses, noContent, ref } from '../schemas/common.js'
import { clientAddress } from '../src/client-address.js'
import { RequestDeadline } from '../src/deadline.js'
import { InvalidCredentialsError, InvalidRefreshTokenError } from '../src/errors.js'
import { userIdFor } from '../src/ids.js'
import { SESSION_USER_AGENT_MAX } from '../src/store/types.js'
import type { Caller, IssuedTokens } from '../src/tokens/token-service.js'

type Transport = 'body' | 'cookie'

const TOKEN_COOKIES = {
  'set-cookie': {
    type: 'string',
    description: 'Cookie mode only: `access_token` (Path=/) and `refresh_token` (Path=/auth), both HttpOnly; Secure; SameSite=Strict, Max-Age = lifetime',
  },
}
const REFRESH_COOKIE_PARAMETER = {
  type: 'object',
  properties: {
    [REFRESH_COOKIE]: { type: 'string', description: 'Cookie mode: the refresh token, when the body has none' },
  },
}

const CROSS_SITE = {
  description: 'Cookie mode: the request came from an origin that is neither this API\'s nor one of CORS_ORIGINS (CSRF defence); nothing was spent',
  example: { message: 'A cookie-authenticated request must come from this API\'s origin or one listed in CORS_ORIGINS', code: 'CROSS_SITE_REQUEST' },
}

/**
 * Answers with a token pair in the chosen transport. Cookie transport: both tokens in HttpOnly
 * cookies, the access token also in the body (SPAs may keep it in memory), never the refresh token.
 */
export function sendTokens (reply: FastifyReply, tokens: IssuedTokens, transport: Transport) {
  // RFC 6749 §5.1: responses carrying tokens must not be cached.
  reply.header('cache-control', 'no-store')
  const body: TokenResponse = { access_token: tokens.accessToken, token_type: 'Bearer', expires_in: tokens.accessTokenTtl }
  if (transport === 'cookie') reply.setTokenCookies(tokens)
  else body.refresh_token = tokens.refreshToken
  return body
}

/** Refresh and logout may come with no body at all (the token is in a cookie): validate it as `{}`. */
async function bodyMayBeAbsent (request: FastifyRequest) {
  request.body ??= {}
}

/** The caller as a session records it, and the request's store deadline. */
export function callerOf (request: FastifyRequest, reply: FastifyReply): Caller & { deadline: RequestDeadline } {
  const userAgent = request.headers['user-agent']
  return {
    ip: clientAddress(request),
    userAgent: userAgent === undefined || userAgent === '' ? null : userAgent.slice(0, SESSION_USER_AGENT_MAX),
    // Counted from its arrival (Fastify's start of the request): the limits' counts are inside it.
    deadline: RequestDeadline.arrivedMsAgo(reply.elapsedTime),
  }
}

/** The user a login names (existing or not): its attempts are counted and audited under this id. */
function loginUserId (request: FastifyRequest): string {
  return userIdFor((request.body as LoginBody).username)
}

const auth: FastifyPluginAsyncTypebox = async function (fastify) {
  const { tokens, config } = fastify

  // Login and refresh each live in a scope of their own, where their own limit is registered.
  await fastify.register(async function loginScope (scope) {
    // Per client IP and username (after validation, so the username is known): someone hammering
    // one account from an IP does not lock other users of that IP (a NAT, an office) out.
    await scope.register(fastify.requestLimit({
      name: 'login',
      max: config.rateLimit.loginMax,
      hook: 'preHandler',
      // Under the user's hash tag, like every key about one user (docs/api.md, "Redis").
      key: request => `{user:${loginUserId(request)}}:${clientAddress(request)}`,
      userId: loginUserId,
      // A Redis that serves reads but refuses writes (full, or a demoted primary) would still check
      // passwords: wrong ones 401, the right one 503. Uncounted, that is a guessing oracle.
      failClosed: true,
    }))
    scope.withTypeProvider<TypeBoxTypeProvider>().post('/login', {
      // No cookie authenticates a login; a forged one could at most log a browser in to the forger's
      // account, and cross-site forms cannot send its JSON body or X-Auth-Mode (README, "CSRF").
      config: { csrf: false },
      schema: {
        tags: ['auth'],
        operationId: 'login',
        summary: 'Log in with a username and password',
        description: 'Starts a session. Body mode (default): both tokens in the JSON body. ' +
        'Cookie mode (`X-Auth-Mode: cookie`, for browsers): both tokens as HttpOnly cookies, the access token also in the body, the refresh token never. ' +
        'Unknown users and wrong passwords get the same 401.',
        headers: AuthModeHeaders,
        body: ref(LoginBody),
        response: {
          200: ref(TokenResponse, { description: 'Logged in: a new session', headers: TOKEN_COOKIES }),
          ...errorResponses({
            400: true,
            401: { description: 'Wrong username or password (the same answer for both)', example: { message: 'Invalid username or password', code: 'INVALID_CREDENTIALS' } },
            413: true,
            415: true,
            429: { description: 'Too many attempts for this username from this client (`RATE_LIMITED`), or too many of this client\'s logins being checked at once (`LOGIN_BUSY`); retry after `Retry-After` seconds' },
            503: { description: 'The token store is unavailable, or the server is checking as many logins as it can (`LOGIN_BUSY`); retry after `Retry-After` seconds. Nothing was let through.' },
          }),
        },
      },
    }, async function (request, reply) {
      const issued = await tokens.login(request.body.username, request.body.password, callerOf(request, reply)).catch((err: unknown) => {
        if (err instanceof InvalidCredentialsError) request.audit('login_failed', { userId: err.userId })
        throw err
      })
      request.audit('login_succeeded', { userId: issued.user.id, sessionId: issued.sessionId, ...(issued.endedSessionIds.length > 0 ? { endedSessionIds: issued.endedSessionIds } : {}) })
      return sendTokens(reply, issued, request.headers['x-auth-mode'] === 'cookie' ? 'cookie' : 'body')
    })
  })

  await fastify.register(async function refreshScope (scope) {
    await scope.register(fastify.requestLimit({ name: 'refresh', max: config.rateLimit.refreshMax }))
    scope.withTypeProvider<TypeBoxTypeProvider>().post('/refresh', {
      preValidation: bodyMayBeAbsent,
      preHandler: fastify.csrfProtection,
      schema: {
        tags: ['auth'],
        operationId: 'refresh',
        summary: 'Spend a refresh token for a new token pair',
        description: 'The refresh token comes from the body, else from the `refresh_token` cookie, and the answer uses the same transport. ' +
        'Each refresh token is spent once. Within `REFRESH_REUSE_GRACE` seconds (default 30) of its rotation, the spent token presented again ' +
        '(a retry after a lost answer, a second tab) is answered with the same successor refresh token and a fresh access token, as long as that ' +
        'successor is unspent: concurrent refreshes are safe and never fork the session. After the window, or once the successor was spent, ' +
        'presenting the old token is reuse and revokes the whole session. Trade-off: a thief replaying a stolen token within the window gets the ' +
        'same successor as the owner; the theft is detected once one of them presents a token more than the window after the other rotated it, ' +
        'not at once.',
        body: ref(RefreshTokenBody),
        cookies: REFRESH_COOKIE_PARAMETER,
        response: {
          200: ref(TokenResponse, { description: 'A new pair; the presented refresh token is spent', headers: TOKEN_COOKIES }),
          ...errorResponses({ 400: true, 401: { description: 'The refresh token is missing, invalid, expired, spent or revoked; or a token cookie came twice (`DUPLICATE_TOKEN_COOKIE`: nothing was spent)', example: { message: 'The refresh token is invalid, expired, spent or revoked', code: 'INVALID_REFRESH_TOKEN' } }, 403: CROSS_SITE, 413: true, 415: true, 429: true, 503: true }),
        },
      },
    }, async function (request, reply) {
      // A doubled token cookie may be another site's: nothing is spent, whatever the body says.
      refuseDuplicatedTokenCookies(request)
      const presented = presentedRefreshToken(request)
      // An absent token is as invalid as a wrong one (same 401, same message).
      const issued = await tokens.refresh(presented?.token ?? '', callerOf(request, reply)).catch((err: unknown) => {
        if (err instanceof InvalidRefreshTokenError) {
          // A reused token matched a spent one, so the ids it names are proven; anyone can write a
          // well-formed token naming any user, so a merely invalid one names them as claims only.
          if (err.reason === 'reused') request.audit('refresh_token_reused', { userId: err.userId, sessionId: err.sessionId })
          else request.audit('refresh_failed', { claimedUserId: err.userId, claimedSessionId: err.sessionId })
        }
        throw err
      })
      request.audit(issued.replayed ? 'refresh_replayed' : 'token_refreshed', { userId: issued.userId, sessionId: issued.sessionId })
      return sendTokens(reply, issued, presented?.via ?? 'body')
    })
  })

  fastify.post('/logout', {
    preValidation: bodyMayBeAbsent,
    preHandler: fastify.csrfProtection,
    schema: {
      tags: ['auth'],
      operationId: 'logout',
      summary: 'End the session of an access and/or refresh token',
      description: 'Takes the access token (Bearer header or cookie) and/or the refresh token (body or cookie). ' +
        'Revokes the session, denies the access token until it expires, clears both cookies. Always 204: it never tells whether a token was valid. ' +
        'A request carrying a token cookie twice (one may be another site\'s) ends nothing and expires every copy.',
      body: ref(RefreshTokenBody),
      cookies: REFRESH_COOKIE_PARAMETER,
      response: {
        204: noContent('Logged out (whether or not the tokens were valid); both cookies cleared'),
        ...errorResponses({ 400: true, 403: CROSS_SITE, 413: true, 415: true, 429: true, 503: true }),
      },
    },
  }, async function (request, reply) {
    const duplicated = duplicatedTokenCookies(request)
    if (duplicated.length > 0) {
      // Which of the doubled cookies is the user's cannot be known, so nothing is ended; the
      // answer is the same 204, with every cookie the browser could be holding expired.
      return reply.expireTossedTokenCookies(duplicated).clearTokenCookies().code(204).send()
    }
    const ended = await tokens.logout({
      accessToken: presentedAccessToken(request)?.token,
      refreshToken: presentedRefreshToken(request)?.token,
    }, RequestDeadline.arrivedMsAgo(reply.elapsedTime))
    request.audit('logged_out', ended)
    return reply.clearTokenCookies().code(204).send()
  })
}

export default auth
