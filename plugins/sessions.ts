import fp from 'fastify-plugin'
import { SessionService } from '../src/sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The sessions of an account: list them, end one, end all but one. */
    sessions: SessionService
  }
}

/** The core's session listing and ending, over this app's store. */
export default fp(async function sessions (fastify) {
  fastify.decorate('sessions', new SessionService({
    store: fastify.store,
    accessTokenTtl: fastify.config.accessTokenTtl,
    refreshTokenTtl: fastify.config.refreshTokenTtl,
  }))
}, { name: 'sessions', dependencies: ['config', 'store'] })
