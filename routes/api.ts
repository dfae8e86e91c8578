import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AdminResponse, Profile } from '../schemas/api.js'
import { errorResponses, ref } from '../schemas/common.js'
import { InvalidAccessTokenError } from '../src/errors.js'

const api: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/profile', fastify.secured({
    tags: ['api'],
    operationId: 'getProfile',
    summary: 'The logged-in user',
    description: 'The user the access token belongs to, as the user store has it now.',
    response: { 200: ref(Profile, { description: 'The user' }), ...errorResponses({ 401: true, 429: true, 503: true }) },
  }), async function (request) {
    const profile = await fastify.users.profile(request.user.sub)
    // A valid token for an account that no longer exists authenticates nobody.
    if (profile === null) throw new InvalidAccessTokenError('The account of this token no longer exists')
    return profile
  })

  fastify.get('/admin', fastify.secured({
    tags: ['api'],
    operationId: 'getAdminArea',
    summary: 'An area for admins only',
    description: 'Needs an access token carrying the role `admin`; others get 403.',
    response: { 200: ref(AdminResponse, { description: 'Admin access granted' }), ...errorResponses({ 401: true, 403: true, 429: true, 503: true }) },
  }, { role: 'admin' }), async function (request) {
    return { message: 'Welcome to the admin area', id: request.user.sub, roles: request.user.roles }
  })
}

export default api
