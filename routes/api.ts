import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AdminResponse, Profile } from '../schemas/api.js'
import { errorResponses } from '../schemas/common.js'
import { InvalidAccessTokenError } from '../src/errors.js'

const api: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/profile', fastify.secured({
    response: { 200: Profile, ...errorResponses(401, 503) },
  }), async function (request) {
    const profile = await fastify.users.profile(request.user.sub)
    // A valid token for an account that no longer exists authenticates nobody.
    if (profile === null) throw new InvalidAccessTokenError('The account of this token no longer exists')
    return profile
  })

  fastify.get('/admin', fastify.secured({
    response: { 200: AdminResponse, ...errorResponses(401, 403, 503) },
  }, { role: 'admin' }), async function (request) {
    return { message: 'Welcome to the admin area', id: request.user.sub, roles: request.user.roles }
  })
}

export default api
