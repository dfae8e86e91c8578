import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { ApiError, InsufficientRoleError, InvalidAccessTokenError, InvalidCredentialsError, InvalidRefreshTokenError, StoreUnavailableError } from '../src/errors.js'
import { DuplicateTokenCookieError } from './presented-tokens.js'

/** RFC 6750 challenge; the description is ours, never client input. */
function bearerChallenge (error: InvalidAccessTokenError | InsufficientRoleError | DuplicateTokenCookieError): string {
  if (error instanceof InsufficientRoleError) return `Bearer error="insufficient_scope", error_description="${error.message}"`
  if (error instanceof DuplicateTokenCookieError) return `Bearer error="invalid_request", error_description="${error.message}"`
  return error.presented ? `Bearer error="invalid_token", error_description="${error.message}"` : 'Bearer'
}

/** Failed logins and refreshes are audit events; the core's errors name the user and session. */
function auditFailure (request: FastifyRequest, error: unknown) {
  if (error instanceof InvalidCredentialsError) request.audit('login_failed', { userId: error.userId })
  if (error instanceof InvalidRefreshTokenError) {
    // A reused token matched a spent one, so the ids it names are proven; anyone can write a
    // well-formed token naming any user, so a merely invalid one names them as claims only.
    if (error.reason === 'reused') request.audit('refresh_token_reused', { userId: error.userId, sessionId: error.sessionId })
    else request.audit('refresh_failed', { claimedUserId: error.userId, claimedSessionId: error.sessionId })
  }
}

/**
 * Every error leaves as JSON `{statusCode, error, message, code?}`: client errors say what was
 * wrong, a failed dependency is a 503, anything else a bare 500 with the details only in the log.
 */
export default fp(async function errors (fastify) {
  fastify.setErrorHandler(function (error: FastifyError, request, reply) {
    let statusCode = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
    if (error.validation !== undefined) statusCode = 400
    // Ours (ApiError) and Fastify's own client errors say what happened; any other 5xx is a bug
    // and says nothing of our insides.
    const told = error instanceof ApiError || statusCode < 500

    if (error instanceof InvalidAccessTokenError || error instanceof InsufficientRoleError || (error instanceof DuplicateTokenCookieError && error.bearerChallenge)) {
      reply.header('www-authenticate', bearerChallenge(error))
    }
    auditFailure(request, error)
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

  fastify.setNotFoundHandler(function (request, reply) {
    return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `No route ${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}` })
  })
}, { name: 'errors', dependencies: ['audit'] })
