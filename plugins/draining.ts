import fp from 'fastify-plugin'
import { ApiError } from '../src/errors.js'

export class ShuttingDownError extends ApiError {
  constructor () {
    super(503, 'SHUTTING_DOWN', 'This instance is shutting down; retry the request')
  }
}

/**
 * While the server drains (SIGTERM: it stops listening and answers what it has received), every
 * answer closes its connection, and a request that still arrives on a kept-alive connection is
 * answered 503 with `Connection: close`, so the client retries elsewhere. Fastify's own answer for this (`return503OnClosing`, turned off in
 * src/app.ts) is written straight to the socket, without our headers or error shape; this one is an
 * ordinary error answer, after the security-header and CORS hooks.
 */
export default fp(async function draining (fastify) {
  let closing = false
  fastify.addHook('preClose', async () => { closing = true })
  fastify.addHook('onRequest', function (_request, reply, done) {
    if (!closing) return done()
    reply.header('connection', 'close').header('retry-after', '1')
    done(new ShuttingDownError())
  })
  // The answers to requests in flight close their connections too: Node closes idle keep-alive
  // connections once, when the drain starts, so one that becomes idle later would hold the process
  // open until its keep-alive timeout (72 s), far past the grace delay. Not covered: an answer whose
  // headers left just before the drain began and whose last bytes leave after the idle connections
  // were closed keeps its connection, and the process then ends at the 10 s grace bound (exit 1).
  // A window of one socket write.
  fastify.addHook('onSend', function (request, reply, payload, done) {
    if (closing && request.raw.httpVersionMajor === 1) reply.header('connection', 'close')
    done(null, payload)
  })
}, { name: 'draining', dependencies: ['errors', 'security-headers', 'cors'] })
