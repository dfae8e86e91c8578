import fastifyHelmet from '@fastify/helmet'
import fp from 'fastify-plugin'

/**
 * Helmet's headers on every response. The API serves JSON only, so its CSP allows nothing at all;
 * Swagger UI under /docs replaces it with its own (see plugins/openapi.ts). Every answer is
 * `Cache-Control: no-store` unless a route chose otherwise (Swagger UI's static files do): bodies
 * carry tokens and personal data, and error answers must not be replayed by caches either.
 */
export default fp(async function securityHeaders (fastify) {
  await fastify.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
    },
  })
  fastify.addHook('onSend', async function (_request, reply) {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
  })
}, { name: 'security-headers' })
