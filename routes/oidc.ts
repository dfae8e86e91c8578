import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { SIGN_IN_STATE_COOKIE, signInStateCookieOptions } from '../plugins/cookies.js'
import { TokenResponse } from '../schemas/auth.js'
import { errorResponses, ref } from '../schemas/common.js'
import { IdTokenExchangeBody, ProviderParams, SignInCallbackQuery, SignInStartQuery } from '../schemas/oidc.js'
import { clientAddress } from '../src/client-address.js'
import type { ExternalIdentity } from '../src/oidc/external-tokens.js'
import type { OidcProviderConfig } from '../src/oidc/providers.js'
import { RequestDeadline } from '../src/deadline.js'
import { SignInError, returnToOrRefuse } from '../src/oidc/sign-in.js'
import { SIGN_IN_ATTEMPT_TTL_MS } from '../src/store/types.js'
import type { Caller, IssuedTokens } from '../src/tokens/token-service.js'
import { callerOf, sendTokens } from './auth.js'

const UNKNOWN_PROVIDER = { description: 'No provider of this name users may sign in through', example: { message: 'No such identity provider', code: 'UNKNOWN_PROVIDER' } }
const PROVIDER_UNAVAILABLE = {
  description: 'The provider could not be reached within a second (`PROVIDER_UNAVAILABLE`), or the token store is unavailable; retry after `Retry-After` seconds',
  example: { message: 'The identity provider cannot be reached; try again shortly', code: 'PROVIDER_UNAVAILABLE' },
}

/** The API's origin as browsers reach it: PUBLIC_ORIGIN, else as this request reached it (TRUST_PROXY decides). */
function apiOrigin (request: FastifyRequest): string {
  return request.server.config.oidc.publicOrigin ?? `${request.protocol}://${request.host}`
}

/**
 * Signing in through an OpenID provider; afterwards it is one of our sessions like any other.
 * The provider and the checks are the core's (src/oidc/sign-in.ts); here, cookies and redirects.
 */
const oidc: FastifyPluginAsyncTypebox = async function (fastify) {
  const { oidcSignIn, users, tokens, config } = fastify
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>()

  /** The identity's account (linked by issuer and sub, created at its first sign-in), and a session of it. */
  async function startSession (request: FastifyRequest, provider: OidcProviderConfig, identity: ExternalIdentity, caller: Caller): Promise<IssuedTokens> {
    const account = await users.linkExternal(identity, caller.deadline)
    const issued = await tokens.startExternalSession(account, caller)
    request.audit('oidc_login_succeeded', { provider: provider.name, userId: account.id, sessionId: issued.sessionId, ...(issued.endedSessionIds.length > 0 ? { endedSessionIds: issued.endedSessionIds } : {}) })
    return issued
  }

  /** An audit line for a sign-in the provider's answer or the token did not make (outages are logged as such). */
  function auditFailure (request: FastifyRequest, provider: OidcProviderConfig) {
    return (err: unknown): never => {
      if (err instanceof SignInError) request.audit('oidc_login_failed', { provider: provider.name, reason: err.reason })
      throw err
    }
  }

  app.get('/oidc/:name/start', {
    schema: {
      tags: ['oidc'],
      operationId: 'oidcSignInStart',
      summary: 'Start signing in through a provider (browsers)',
      description: 'Redirects to the provider with the authorization code flow (PKCE S256, state, nonce; kept server-side for 10 minutes, one use) and sets the HttpOnly, SameSite=Lax `oidc_state` cookie its callback requires.',
      params: ProviderParams,
      querystring: SignInStartQuery,
      response: {
        302: { description: 'To the provider\'s authorization endpoint', type: 'null', headers: { location: { type: 'string' }, 'set-cookie': { type: 'string', description: '`oidc_state`: HttpOnly; Secure; SameSite=Lax; Path=/auth/oidc/{name}/callback; Max-Age=600' } } },
        ...errorResponses({
          400: { description: '`return_to` is neither on this API\'s origin nor one of OIDC_RETURN_ORIGINS', example: { message: 'return_to must be on this API\'s origin or one of OIDC_RETURN_ORIGINS', code: 'INVALID_RETURN_TO' } },
          404: UNKNOWN_PROVIDER,
          429: true,
          503: PROVIDER_UNAVAILABLE,
        }),
      },
    },
  }, async function (request, reply) {
    const provider = oidcSignIn.provider(request.params.name)
    const origin = apiOrigin(request)
    const returnTo = returnToOrRefuse(request.query.return_to, origin, config.oidc.returnOrigins)
    const { url, state } = await oidcSignIn.start(provider, {
      redirectUri: `${origin}/auth/oidc/${provider.name}/callback`,
      returnTo,
      deadline: RequestDeadline.arrivedMsAgo(reply.elapsedTime),
    })
    reply.setCookie(SIGN_IN_STATE_COOKIE, state, { ...signInStateCookieOptions(provider.name), maxAge: SIGN_IN_ATTEMPT_TTL_MS / 1000 })
    return reply.header('cache-control', 'no-store').redirect(url.href, 302)
  })

  app.get('/oidc/:name/callback', {
    schema: {
      tags: ['oidc'],
      operationId: 'oidcSignInCallback',
      summary: 'Where the provider sends the browser back',
      description: 'Exchanges the code, validates the ID token, links the identity to an account by (issuer, sub) — never by username or email — creating it at the first sign-in, ' +
        'starts a session in cookie mode (the cookies of `X-Auth-Mode: cookie` login) and redirects to `return_to`.',
      params: ProviderParams,
      querystring: SignInCallbackQuery,
      response: {
        302: { description: 'Signed in: to `return_to`, with the session\'s cookies', type: 'null', headers: { location: { type: 'string' }, 'set-cookie': { type: 'string', description: '`access_token` and `refresh_token` as at cookie-mode login; `oidc_state` cleared' } } },
        ...errorResponses({
          400: { description: 'The state is missing, unknown, expired, used already or not this browser\'s (`INVALID_SIGN_IN_STATE`), or the provider ended the sign-in (`PROVIDER_ERROR`); no session', example: { message: 'This sign-in is unknown, expired, already used or was started in another browser; start again', code: 'INVALID_SIGN_IN_STATE' } },
          401: { description: 'The provider refused the code, or its answer did not verify (`SIGN_IN_FAILED`); no session', example: { message: 'The identity provider\'s answer could not be verified; start again', code: 'SIGN_IN_FAILED' } },
          404: UNKNOWN_PROVIDER,
          429: true,
          503: PROVIDER_UNAVAILABLE,
        }),
      },
    },
  }, async function (request, reply) {
    const provider = oidcSignIn.provider(request.params.name)
    reply.clearCookie(SIGN_IN_STATE_COOKIE, signInStateCookieOptions(provider.name))
    const caller = callerOf(request, reply)
    const queryAt = request.url.indexOf('?')
    const signedIn = await oidcSignIn.finish(provider, {
      query: new URLSearchParams(queryAt < 0 ? '' : request.url.slice(queryAt + 1)),
      boundState: request.cookies[SIGN_IN_STATE_COOKIE],
      deadline: caller.deadline,
    }).catch(auditFailure(request, provider))
    reply.setTokenCookies(await startSession(request, provider, signedIn.identity, caller))
    return reply.header('cache-control', 'no-store').redirect(signedIn.returnTo, 302)
  })

  await fastify.register(async function tokenExchangeScope (scope) {
    // Each exchange may cost the provider a JWKS fetch and us a session: the login limit, per client IP.
    await scope.register(fastify.requestLimit({ name: 'oidc-token', max: config.rateLimit.loginMax, key: clientAddress }))
    scope.withTypeProvider<TypeBoxTypeProvider>().post('/oidc/:name/token', {
      // No cookie authenticates it: the ID token in the JSON body does.
      config: { csrf: false },
      schema: {
        tags: ['oidc'],
        operationId: 'oidcTokenExchange',
        summary: 'Exchange a provider\'s ID token for a session (mobile apps)',
        description: 'Verifies the ID token (the provider\'s keys, `iss`, `aud` = the provider\'s `clientId`, `exp`, and `nonce` when given), links or creates the account as the browser callback does, and answers a body-mode token pair.',
        params: ProviderParams,
        body: ref(IdTokenExchangeBody),
        response: {
          200: ref(TokenResponse, { description: 'Signed in: a new session' }),
          ...errorResponses({
            400: true,
            401: { description: 'The ID token is invalid: signature, issuer, audience, expiry or nonce', example: { message: 'The ID token is invalid', code: 'INVALID_ID_TOKEN' } },
            404: UNKNOWN_PROVIDER,
            413: true,
            415: true,
            429: true,
            503: PROVIDER_UNAVAILABLE,
          }),
        },
      },
    }, async function (request, reply) {
      const provider = oidcSignIn.provider(request.params.name)
      const caller = callerOf(request, reply)
      const identity = await oidcSignIn.exchangeIdToken(provider, request.body.id_token, request.body.nonce).catch(auditFailure(request, provider))
      return sendTokens(reply, await startSession(request, provider, identity, caller), 'body')
    })
  })
}

export default oidc
