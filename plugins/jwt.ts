import fastifyJwt from '@fastify/jwt'
import { createVerifier } from 'fast-jwt'
import fp from 'fastify-plugin'
import { accessTokenCodec, accessTokenJwtOptions, type AccessTokenCodec, type AccessTokenPayload } from '../src/tokens/access-token.js'
import { KeyRing } from '../src/tokens/key-ring.js'
import type { Principal } from '../src/principal.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenPayload
    /** who a protected request acts for (plugins/authenticate.ts sets it; src/principal.ts) */
    user: Principal
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Signs and verifies access tokens: the one seam every key source goes behind. */
    accessTokens: AccessTokenCodec
    /** The keys access tokens are signed and verified with (their public halves published as JWKS). */
    signingKeys: KeyRing
  }
}

/**
 * @fastify/jwt with every option pinned (algorithm, issuer, audience, `typ`), wrapped as the core's
 * AccessTokenCodec. Its signer and verifier are built once here: nothing is imported or compiled
 * per request. Requests are authenticated by our own hook (plugins/authenticate.ts), not by
 * `request.jwtVerify` or the `trusted` option.
 */
export default fp(async function jwt (fastify) {
  const { config } = fastify
  const keys = new KeyRing({ algorithm: config.jwt.algorithm, secret: config.jwt.secret, privateKey: config.jwt.privateKey, previousSecrets: config.jwt.previousSecrets, verifyKeys: config.jwt.verifyKeys })
  const options = accessTokenJwtOptions(config, keys.signing.kid)
  // @fastify/jwt signs (with the signing key's `kid` in the header); verification picks the key the
  // token names and pins that key's algorithm, never the token's.
  await fastify.register(fastifyJwt, options)
  const verifiers = new Map(keys.keys.map(key => [key.kid, {
    verify: createVerifier({ ...options.verify, algorithms: [key.algorithm], key: key.key, cache: false }),
    // Consulted only for tokens that failed as expired.
    ignoringExpiry: createVerifier({ ...options.verify, algorithms: [key.algorithm], key: key.key, ignoreExpiration: true, cache: false }),
  }]))
  const verifierFor = (token: string) => {
    const key = keys.keyFor(token)
    const verifier = key === undefined ? undefined : verifiers.get(key.kid)
    if (verifier === undefined) throw new Error('the token names a key this service does not hold')
    return verifier
  }
  fastify.decorate('signingKeys', keys)
  fastify.decorate('accessTokens', accessTokenCodec({
    sign: (payload, lifetime) => lifetime === undefined ? fastify.jwt.sign(payload) : fastify.jwt.sign(payload, { expiresIn: `${lifetime}s` }),
    verify: (token) => verifierFor(token).verify(token),
    verifyIgnoringExpiry: (token) => verifierFor(token).ignoringExpiry(token),
  }, config.accessTokenTtl))
}, { name: 'jwt', dependencies: ['config'] })
