import { STATUS_CODES } from 'node:http'
import type { FastifyError } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, StoreUnavailableError } from '../src/errors.js'

/**
 * Every error leaves as JSON `{statusCode, error, message, code?}`: client errors say what was
 * wrong, a failed dependency is a 503, anything else a bare 500 with the details only in the log.
 * It only shapes answers: what a refusal means (its challenge, its audit line) is decided where the
 * refusal is made.
 */
export default fp(async function errors (fastify) {
  fastify.setErrorHandler(function (error: FastifyError, request, reply) {
    let statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (error.validation !== undefined) statusCode = 400
    // Ours (ApiError) and Fastify's own client errors say what happened; any other 5xx is a bug
    // and says nothing of our insides.
    const told = error instanceof ApiError || statusCode < 500

    if (error instanceof StoreUnavailableError) {
      // The reason only: ioredis errors carry the command and its arguments (keys, token hashes).
      const reason = error.cause instanceof Error ? error.cause.message : String(error.cause)
      if (error.reported) request.log.debug({ reason }, 'token store unavailable')
      else request.log.warn({ reason }, 'token store unavailable')
    } else if (told) {
      request.log.info({ code: error.code, statusCode }, error.message)
    } else {
      request.log.error({ err: error }, 'unhandled error')
    }

    if (error instanceof ApiError && error.retryAfter !== undefined) reply.header('retry-after', String(error.retryAfter))
    const body: Record<string, unknown> = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: told ? error.message : 'Something went wrong on our side' }
    if (told && typeof error.code === 'string') body.code = error.code
    return reply.code(statusCode).type('application/json; charset=utf-8').send(body)
  })

  // The path is not echoed: it may carry an id (a session's, a user's) that a 404 must not repeat.
  fastify.setNotFoundHandler(function (_request, reply) {
    return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: 'No such route' })
  })
}, { name: 'errors', dependencies: ['audit'] })
