import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AdminResponse, Profile } from '../schemas/api.js'
import { errorResponses, ref } from '../schemas/common.js'

const api: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/profile', fastify.secured({
    tags: ['api'],
    operationId: 'getProfile',
    summary: 'The logged-in user',
    description: 'The user the access token belongs to, as the user store has it now.',
    response: { 200: ref(Profile, { description: 'The user' }), ...errorResponses({ 401: true, 429: true, 503: true }) },
  }, { account: true }), async function (request) {
    // Read with the access check; an account that no longer exists was refused there.
    if (request.account === null) throw new Error('/api/profile is protected with { account: true }, yet has no account')
    return request.account
  })

  fastify.get('/admin', fastify.secured({
    tags: ['api'],
    operationId: 'getAdminArea',
    summary: 'An area for admins only',
    description: 'Needs an access token carrying the role `admin`; others get 403.',
    response: { 200: ref(AdminResponse, { description: 'Admin access granted' }), ...errorResponses({ 401: true, 403: true, 429: true, 503: true }) },
  }, { role: 'admin' }), async function (request) {
    return { message: 'Welcome to the admin area', id: request.user.id, roles: request.user.roles }
  })
}

export default api
