import type { IncomingMessage, ServerResponse } from 'node:http'
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
 * helmet's headers for these options, read off its middleware once. They depend on nothing in the
 * request, so every answer gets the same list; @fastify/helmet 13 builds a new helmet middleware on
 * every request, which halved the throughput of a bare route (docs/decisions.md).
 */
export const SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = (() => {
  const headers: Array<[string, string]> = []
  const recorder = {
    setHeader (name: string, value: unknown) { headers.push([name.toLowerCase(), String(value)]) },
    removeHeader () {},
  }
  helmet(HELMET_OPTIONS)({} as IncomingMessage, recorder as unknown as ServerResponse, () => {})
  return headers
})()

/** Every header this plugin puts on an answer, `Cache-Control: no-store` included. */
export const ALL_SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [...SECURITY_HEADERS, ['cache-control', 'no-store']]

/**
 * For answers that bypass the hooks: errors Fastify raises before routing (a malformed URL) go
 * through `frameworkErrors` and no hook at all.
 */
export function setSecurityHeaders (reply: FastifyReply): void {
  for (const [name, value] of ALL_SECURITY_HEADERS) reply.header(name, value)
}

/**
 * The security headers on every response (on the raw response, so a route's own `reply.header`
 * wins: Swagger UI sets its CSP so). Every answer is also `Cache-Control: no-store` unless a route
 * chose otherwise (Swagger UI's static files do): bodies carry tokens and personal data, and error
 * answers must not be replayed by caches either.
 */
export default fp(async function securityHeaders (fastify) {
  fastify.addHook('onRequest', function (_request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) {
    for (const [name, value] of SECURITY_HEADERS) reply.raw.setHeader(name, value)
    done()
  })
  fastify.addHook('onSend', function (_request, reply, payload, done) {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store')
    done(null, payload)
  })
}, { name: 'security-headers' })
