import fastifyJwt from '@fastify/jwt'
import { createVerifier } from 'fast-jwt'
import fp from 'fastify-plugin'
import { accessTokenCodec, accessTokenJwtOptions, type AccessTokenClaims, type AccessTokenCodec, type AccessTokenPayload } from '../src/tokens/access-token.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenPayload
    user: AccessTokenClaims
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Signs and verifies access tokens: the one seam every key source goes behind. */
    accessTokens: AccessTokenCodec
  }
}

/**
 * @fastify/jwt with every option pinned (algorithm, issuer, audience, `typ`), wrapped as the core's
 * AccessTokenCodec. Its signer and verifier are built once here: nothing is imported or compiled
 * per request. Requests are authenticated by our own hook (plugins/authenticate.ts), not by
 * `request.jwtVerify` or the `trusted` option.
 */
export default fp(async function jwt (fastify) {
  const options = accessTokenJwtOptions(fastify.config)
  await fastify.register(fastifyJwt, options)
  // Consulted only for tokens that failed as expired: built once, uncached.
  const ignoringExpiry = createVerifier({ ...options.verify, key: options.secret, ignoreExpiration: true, cache: false })
  fastify.decorate('accessTokens', accessTokenCodec({
    sign: (payload, lifetime) => lifetime === undefined ? fastify.jwt.sign(payload) : fastify.jwt.sign(payload, { expiresIn: `${lifetime}s` }),
    verify: (token) => fastify.jwt.verify(token),
    verifyIgnoringExpiry: (token) => ignoringExpiry(token),
  }, fastify.config.accessTokenTtl))
}, { name: 'jwt', dependencies: ['config'] })
