import { ownSession } from '../src/principal.js'
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { PasswordChangeBody } from '../schemas/auth.js'
import { errorResponses, noContent, ref } from '../schemas/common.js'
import { clientAddress } from '../src/client-address.js'
import { RequestDeadline } from '../src/deadline.js'

/** POST /auth/password: a password change, which ends every other session of the account. */
const password: FastifyPluginAsyncTypebox = async function (fastify) {
  const { config } = fastify
  // The login limit's own counter (user + IP): a stolen access token must not buy unlimited guesses.
  // After validation (a 400 is not an attempt) and authentication (the user is the token's).
  await fastify.register(fastify.requestLimit({
    name: 'login',
    max: config.rateLimit.loginMax,
    hook: 'preHandler',
    key: request => `{user:${request.user.id}}:${clientAddress(request)}`,
    userId: request => request.user.id,
    failClosed: true,
  }))

  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/password', fastify.secured({
    tags: ['sessions'],
    operationId: 'changePassword',
    summary: 'Change the caller\'s password',
    description: 'Checks `current_password`, stores the new one (argon2id), keeps the caller\'s session and ends every other session of the account ' +
      '(their refresh tokens stop working, their access tokens are refused from their next request on). ' +
      'Every attempt counts in the login limit of this user and client address. ' +
      'A user of USERS_FILE whose account is recreated after a Redis loss gets the file\'s password back.',
    body: ref(PasswordChangeBody),
    response: {
      204: noContent('Changed; every other session ended'),
      ...errorResponses({
        400: { description: 'The body is malformed, or `new_password` is shorter than 12 characters (or longer than 1024)', example: { message: 'body/new_password must NOT have fewer than 12 characters', code: 'FST_ERR_VALIDATION' } },
        401: true,
        403: { description: 'Wrong `current_password` (`INVALID_CURRENT_PASSWORD`: the session is fine, do not sign out), a cookie-authenticated request from another site (`CROSS_SITE_REQUEST`), an access token of a trusted provider rather than of this API (`OWN_SESSION_REQUIRED`), or an account that signs in through a provider and has no password here (`NO_PASSWORD`)', example: { message: 'The current password is wrong', code: 'INVALID_CURRENT_PASSWORD' } },
        413: true,
        415: true,
        429: { description: 'Too many attempts for this user from this client (`RATE_LIMITED`, shared with logins), or too many password checks of this client at once (`LOGIN_BUSY`)' },
        503: true,
      }),
    },
  }, { account: true }), async function (request, reply) {
    const deadline = RequestDeadline.arrivedMsAgo(reply.elapsedTime)
    const userId = request.user.id
    const sid = ownSession(request.user).id
    await fastify.users.changePassword(userId, request.body.current_password, request.body.new_password, clientAddress(request), deadline)
    const ended = await fastify.sessions.endAll(userId, { except: sid, deadline: deadline.at })
    request.audit('password_changed', { userId, sessionId: sid })
    request.audit('session_revoked', { by: 'password_change', userId, sessionIds: ended })
    return reply.code(204).send(null)
  })
}

export default password
