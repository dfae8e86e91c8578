import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses } from '../schemas/common.js'
import { HealthResponse, ReadyResponse } from '../schemas/health.js'

const health: FastifyPluginAsyncTypebox = async function (fastify) {
  /** Liveness: the process answers. Depends on nothing. */
  fastify.get('/health', { schema: { response: { 200: HealthResponse } } }, async function () {
    return { status: 'ok' as const }
  })

  /** Readiness: the token store answers (503 otherwise, within the store's command timeout). */
  fastify.get('/ready', { schema: { response: { 200: ReadyResponse, ...errorResponses(503) } } }, async function () {
    await fastify.store.ping()
    return { status: 'ok' as const, store: fastify.store.kind }
  })
}

export default health
