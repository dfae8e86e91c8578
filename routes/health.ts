import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errorResponses, ref } from '../schemas/common.js'
import { HealthResponse, ReadyResponse } from '../schemas/health.js'

const health: FastifyPluginAsyncTypebox = async function (fastify) {
  // Probes are never rate-limited: a load balancer polling /ready must not get 429s.
  fastify.get('/health', {
    config: { rateLimit: false },
    schema: {
      tags: ['health'],
      operationId: 'health',
      summary: 'Liveness',
      description: 'The process answers. Depends on nothing, not even the token store.',
      response: { 200: ref(HealthResponse, { description: 'Alive' }) },
    },
  }, async function () {
    return { status: 'ok' as const }
  })

  fastify.get('/ready', {
    config: { rateLimit: false },
    schema: {
      tags: ['health'],
      operationId: 'ready',
      summary: 'Readiness',
      description: 'The token store answers; 503 within a second when it does not.',
      response: { 200: ref(ReadyResponse, { description: 'Ready to serve' }), ...errorResponses({ 503: 'The token store does not answer' }) },
    },
  }, async function () {
    await fastify.store.ping()
    return { status: 'ok' as const, store: fastify.store.kind }
  })
}

export default health
