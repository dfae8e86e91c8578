import fp from 'fastify-plugin'
import { TokenService } from '../src/tokens/token-service.js'

declare module 'fastify' {
  interface FastifyInstance {
    tokens: TokenService
  }
}

/** The core's token lifecycle (login, refresh, logout, access checks) over this app's store and keys. */
export default fp(async function tokens (fastify) {
  fastify.decorate('tokens', new TokenService({
    store: fastify.store,
    users: fastify.users,
    codec: fastify.accessTokens,
    accessTokenTtl: fastify.config.accessTokenTtl,
    refreshTokenTtl: fastify.config.refreshTokenTtl,
    sessionMaxAge: fastify.config.sessionMaxAge,
    maxSessionsPerUser: fastify.config.maxSessionsPerUser,
    refreshReuseGrace: fastify.config.refreshReuseGrace,
  }))
}, { name: 'tokens', dependencies: ['config', 'store', 'users', 'jwt'] })
