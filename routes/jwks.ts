import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type, type Static } from 'typebox'
import { errorResponses } from '../schemas/common.js'

const Jwk = Type.Object({
  kty: Type.String(),
  kid: Type.String({ description: 'The RFC 7638 thumbprint of the key: the `kid` of the tokens it signed' }),
  alg: Type.String(),
  use: Type.Literal('sig'),
  crv: Type.Optional(Type.String()),
  x: Type.Optional(Type.String()),
  y: Type.Optional(Type.String()),
  n: Type.Optional(Type.String()),
  e: Type.Optional(Type.String()),
}, { additionalProperties: false, description: 'A public key: never a private member' })

/** GET /.well-known/jwks.json: the public keys access tokens verify with (asymmetric modes). */
const jwks: FastifyPluginAsyncTypebox = async function (fastify) {
  fastify.get('/.well-known/jwks.json', {
    schema: {
      tags: ['keys'],
      operationId: 'getJwks',
      summary: 'The public keys of access tokens (JWKS)',
      description: 'For services that verify this API\'s access tokens themselves: the signing key and any other key tokens may name (JWT_VERIFY_KEYS_FILE), ' +
        'each with `kid`, `alg` and `use: "sig"`. Cacheable for 5 minutes. 404 in HS256 mode, whose key is a shared secret.',
      response: {
        200: Type.Object({ keys: Type.Array(Jwk) }, { description: 'The public keys' }),
        ...errorResponses({ 404: { description: 'HS256 mode: no public key to publish', example: { message: 'No such route' } }, 429: true }),
      },
    },
  }, async function (_request, reply) {
    const keys = fastify.signingKeys.jwks
    if (keys.length === 0) return reply.callNotFound()
    // Public and the same for everyone: caches may keep it (the edge's no-store is for everything else).
    reply.header('cache-control', 'public, max-age=300')
    return { keys: keys as unknown as Array<Static<typeof Jwk>> }
  })
}

export default jwks
