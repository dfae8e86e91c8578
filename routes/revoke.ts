import fastifyFormbody from '@fastify/formbody'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { RevokeBody } from '../schemas/auth.js'
import { errorResponses, ref } from '../schemas/common.js'
import { RequestDeadline } from '../src/deadline.js'

/**
 * POST /auth/revoke, RFC 7009. The only route that takes a form body, as OAuth clients send one:
 * @fastify/formbody is registered in this scope alone, so every other route still refuses forms
 * (login's CSRF reasoning relies on it).
 */
const revoke: FastifyPluginAsyncTypebox = async function (fastify) {
  await fastify.register(fastifyFormbody, { bodyLimit: 16 * 1024 })
  await fastify.register(fastify.requestLimit({ name: 'revoke', max: fastify.config.rateLimit.refreshMax }))

  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/revoke', {
    // No cookie authenticates a revocation: the token is in the body. A forged one from another site
    // can only revoke a token its forger already holds.
    config: { csrf: false },
    schema: {
      tags: ['auth'],
      operationId: 'revokeToken',
      summary: 'Revoke a token (RFC 7009)',
      description: 'A refresh token (live, or one of its session\'s last spent) ends its session; a valid access token is refused from its next request on until it expires, ' +
        'its session living on. 200 with an empty body for every well-formed request, whatever the token was: the answer tells nothing about it. ' +
        'JSON or `application/x-www-form-urlencoded`. Rate-limited per client address as refresh is (`RATE_LIMIT_REFRESH_MAX`, a counter of its own).',
      body: ref(RevokeBody),
      response: {
        200: Type.Null({ description: 'Done, or nothing to do: the same empty answer' }),
        ...errorResponses({
          400: { description: 'No `token`, or a body that is neither JSON nor a form', example: { message: 'body must have required property \'token\'', code: 'FST_ERR_VALIDATION' } },
          413: true,
          415: { description: 'The body is neither JSON nor a form' },
          429: true,
          503: true,
        }),
      },
    },
  }, async function (request, reply) {
    const outcome = await fastify.tokens.revoke(request.body.token, RequestDeadline.arrivedMsAgo(reply.elapsedTime))
    if (outcome.endedSession !== undefined) request.audit('session_revoked', { by: 'revoke_endpoint', userId: outcome.endedSession.userId, sessionIds: [outcome.endedSession.sessionId] })
    if (outcome.deniedToken !== undefined) request.audit('access_token_revoked', outcome.deniedToken)
    // An empty body (no payload at all: `null` would be serialised as "null").
    return reply.code(200).send(undefined as unknown as null)
  })
}

export default revoke
