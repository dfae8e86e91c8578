import fp from 'fastify-plugin'
import { OidcSignIn } from '../src/oidc/sign-in.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Signing in through the trusted OpenID providers (OIDC_PROVIDERS_FILE entries with a clientId). */
    oidcSignIn: OidcSignIn
  }
}

/** Sign-in through OpenID providers, its attempts kept in the store; with no provider, every name is a 404. */
export default fp(async function oidcSignIn (fastify) {
  fastify.decorate('oidcSignIn', new OidcSignIn(fastify.config.oidc.providers, fastify.store, fastify.externalTokens))
}, { name: 'oidc-sign-in', dependencies: ['config', 'store', 'external-tokens'] })
