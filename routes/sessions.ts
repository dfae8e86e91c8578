import { ownSession } from '../src/principal.js'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, noContent, ref } from '../schemas/common.js'
import { ID_MAX_LENGTH, SessionIdParams, SessionList } from '../schemas/sessions.js'
import { RequestDeadline } from '../src/deadline.js'
import { SessionNotFoundError } from '../src/errors.js'

/** What an external provider's access token gets here: these routes are about our sessions, and it has none. */
const OWN_SESSION = 'an access token of a trusted provider, not of this API: it has no session here (`OWN_SESSION_REQUIRED`)'
const OWN_SESSION_ONLY = { description: `The token is ${OWN_SESSION}`, example: { message: 'This route needs an access token of this API (an external token has no session here)', code: 'OWN_SESSION_REQUIRED' } }
const CROSS_SITE = { description: `Cookie mode: the request came from an origin that is neither this API's nor one of CORS_ORIGINS (CSRF defence; \`CROSS_SITE_REQUEST\`), nothing was ended; or the token is ${OWN_SESSION}`, example: { message: 'A cookie-authenticated request must come from this API\'s origin or one listed in CORS_ORIGINS', code: 'CROSS_SITE_REQUEST' } }

/** The caller's own sessions: see them, end one, end them all (under /auth). */
const sessions: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/sessions', fastify.secured({
    tags: ['sessions'],
    operationId: 'listSessions',
    summary: 'The caller\'s live sessions',
    description: 'One session per login (the access token\'s `sid`), newest first; `current` marks the caller\'s own. ' +
      '`lastUsedAt` is the last login or refresh: calls made with an access token are not recorded.',
    response: { 200: ref(SessionList, { description: 'The live sessions' }), ...errorResponses({ 401: true, 403: OWN_SESSION_ONLY, 429: true, 503: true }) },
  }), async function (request, reply) {
    const current = ownSession(request.user).id
    const listed = await fastify.sessions.list(request.user.id, RequestDeadline.arrivedMsAgo(reply.elapsedTime).at)
    return { sessions: listed.map(session => ({ ...session, current: session.id === current })) }
  })

  fastify.delete('/sessions/:id', fastify.secured({
    tags: ['sessions'],
    operationId: 'endSession',
    summary: 'End one of the caller\'s sessions',
    description: 'Its refresh token stops working, and its access tokens are refused on every instance from their next request on. ' +
      'Ending the caller\'s own session clears its cookies, as a logout does.',
    params: SessionIdParams,
    response: {
      204: noContent('Ended'),
      ...errorResponses({
        401: true,
        403: CROSS_SITE,
        404: { description: 'Not one of the caller\'s live sessions (whoever\'s it is, or whether it ever existed, is not said)', example: { message: 'No such session', code: 'SESSION_NOT_FOUND' } },
        429: true,
        503: true,
      }),
    },
  }), async function (request, reply) {
    const { id } = request.params
    const current = ownSession(request.user).id
    const ended = id.length <= ID_MAX_LENGTH && await fastify.sessions.end(request.user.id, id, RequestDeadline.arrivedMsAgo(reply.elapsedTime).at)
    if (!ended) throw new SessionNotFoundError()
    request.audit('session_revoked', { by: 'self', userId: request.user.id, sessionIds: [id] })
    if (id === current) reply.clearTokenCookies()
    return reply.code(204).send(null)
  })

  fastify.post('/logout-all', fastify.secured({
    tags: ['sessions'],
    operationId: 'logoutAll',
    summary: 'End every session of the caller',
    description: 'Every session of the account ends, the caller\'s included: their refresh tokens stop working and their access tokens are refused on every instance from their next request on. Clears both cookies.',
    response: {
      204: noContent('Every session ended; both cookies cleared'),
      ...errorResponses({ 401: true, 403: CROSS_SITE, 429: true, 503: true }),
    },
  }), async function (request, reply) {
    ownSession(request.user)
    const ended = await fastify.sessions.endAll(request.user.id, { deadline: RequestDeadline.arrivedMsAgo(reply.elapsedTime).at })
    request.audit('session_revoked', { by: 'self', userId: request.user.id, sessionIds: ended })
    return reply.clearTokenCookies().code(204).send()
  })
}

export default sessions
