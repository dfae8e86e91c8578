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
 * helmet's own middleware, built once: @fastify/helmet 13 builds a new helmet middleware on every
 * request, which halved the throughput of a bare route (`npm run bench` and docs/decisions.md).
 * It sets headers and calls back synchronously.
 */
const applyHelmet = helmet(HELMET_OPTIONS)

/**
 * Every header this plugin puts on an answer, for answers that bypass the hooks: errors Fastify
 * raises before routing (a malformed URL) go through `frameworkErrors` and no hook at all.
 */
export function setSecurityHeaders (request: FastifyRequest, reply: FastifyReply): void {
  applyHelmet(request.raw, reply.raw, () => {})
  reply.header('cache-control', 'no-store')
}

/**
 * Helmet's headers on every response. Every answer is also `Cache-Control: no-store` unless a
 * route chose otherwise (Swagger UI's static files do): bodies carry tokens and personal data, and
 * error answers must not be replayed by caches either.
 */
export default fp(async function securityHeaders (fastify) {
  fastify.addHook('onRequest', function (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    applyHelmet(request.raw, reply.raw, (err?: unknown) => { done(err as Error | undefined) })
  })
  fastify.addHook('onSend', function (_request, reply, payload, done) {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
}, { name: 'security-headers' })
