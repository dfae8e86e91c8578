import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, noContent, ref } from '../schemas/common.js'
import { ID_MAX_LENGTH, UserIdParams, UserSessionList } from '../schemas/sessions.js'
import { RequestDeadline } from '../src/deadline.js'

/** What admins do to other accounts (under /api/admin; role `admin`). */
const admin: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/users/:id/sessions', fastify.secured({
    tags: ['admin'],
    operationId: 'listUserSessions',
    summary: 'A user\'s live sessions',
    description: 'Newest first. An unknown user has none: 200 with an empty list.',
    params: UserIdParams,
    response: { 200: ref(UserSessionList, { description: 'The user\'s live sessions' }), ...errorResponses({ 401: true, 403: true, 429: true, 503: true }) },
  }, { role: 'admin' }), async function (request, reply) {
    const { id } = request.params
    if (id.length > ID_MAX_LENGTH) return { sessions: [] }
    return { sessions: await fastify.sessions.list(id, RequestDeadline.arrivedMsAgo(reply.elapsedTime).at) }
  })

  fastify.delete('/users/:id/sessions', fastify.secured({
    tags: ['admin'],
    operationId: 'endUserSessions',
    summary: 'End every session of a user',
    description: 'Their refresh tokens stop working and their access tokens are refused on every instance from their next request on. ' +
      'An unknown user, or one with no session: 204 all the same.',
    params: UserIdParams,
    response: { 204: noContent('Every session of the user ended'), ...errorResponses({ 401: true, 403: true, 429: true, 503: true }) },
  }, { role: 'admin' }), async function (request, reply) {
    const { id } = request.params
    const ended = id.length > ID_MAX_LENGTH ? [] : await fastify.sessions.endAll(id, { deadline: RequestDeadline.arrivedMsAgo(reply.elapsedTime).at })
    request.audit('session_revoked', { by: 'admin', adminId: request.user.id, userId: id.slice(0, ID_MAX_LENGTH), sessionIds: ended })
    return reply.code(204).send(null)
  })
}

export default admin
