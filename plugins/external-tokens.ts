import fp from 'fastify-plugin'
import { ExternalTokens } from '../src/oidc/external-tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Access tokens of the trusted OpenID providers (OIDC_PROVIDERS_FILE entries with an audience). */
    externalTokens: ExternalTokens
  }
}

/** The verifier of external access tokens; with no provider configured it accepts none. */
export default fp(async function externalTokens (fastify) {
  fastify.decorate('externalTokens', new ExternalTokens(fastify.config.oidc.providers))
}, { name: 'external-tokens', dependencies: ['config'] })
