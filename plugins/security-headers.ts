import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import helmet from 'helmet'

/**
 * The API serves JSON only, so its CSP allows nothing at all; Swagger UI under /docs replaces it
 * with its own (see plugins/openapi.ts).
 */
export const HELMET_OPTIONS = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"] },
  },
}

/**
 * Helmet's headers on every response. helmet's own middleware, built once: @fastify/helmet 13
 * builds a new helmet middleware on every request, which halved the throughput of a bare route
 * (`npm run bench` and docs/decisions.md). Every answer is also `Cache-Control: no-store` unless a
 * route chose otherwise (Swagger UI's static files do): bodies carry tokens and personal data, and
 * error answers must not be replayed by caches either.
 */
export default fp(async function securityHeaders (fastify) {
  const applyHelmet = helmet(HELMET_OPTIONS)
  fastify.addHook('onRequest', function (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    applyHelmet(request.raw, reply.raw, (err?: unknown) => { done(err as Error | undefined) })
  })
  fastify.addHook('onSend', function (_request, reply, payload, done) {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
}, { name: 'security-headers' })
