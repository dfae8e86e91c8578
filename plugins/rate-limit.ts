import fastifyRateLimit, { normalizeIP, type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import { OncePerWindow } from '../src/once-per-window.js'
import { redactRedisUrl } from '../src/store/index.js'

/** Limits count per minute. */
const WINDOW_MS = 60_000
/**
 * The limiter fails open (DESIGN.md: the auth checks behind it fail closed), and fast: a stalled
 * Redis costs a request at most this long before it goes through uncounted.
 */
const LIMITER_COMMAND_TIMEOUT_MS = 150
const LIMITER_CONNECT_TIMEOUT_MS = 1000
/** Clients whose `rate_limited` line was written this window, remembered per instance (~1 MB at most). */
const REPORTED_CLIENTS_MAX = 10_000

export interface RequestLimit {
  /** names the counter (`<REDIS_KEY_PREFIX>rate:<name>:<key>`) and the limit in audit lines */
  name: string
  /** requests per minute; 0 turns this limit off */
  max: number
  /** what is counted; the client IP (an IPv6 /64) when unset */
  key?: (request: FastifyRequest) => string
  /** the audited user, where the limit is per user */
  userId?: (request: FastifyRequest) => string | undefined
  /** `preHandler` when the key needs the validated body; `onRequest` (before any parsing) otherwise */
  hook?: 'onRequest' | 'preHandler'
}

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A plugin adding one more limit to every route of the scope it is registered in, on top of
     * the API-wide one: `await scope.register(fastify.requestLimit({ name: 'login', ... }))`.
     */
    requestLimit (limit: RequestLimit): FastifyPluginAsync
  }
}

/** The client IP as the limiter sees it: TRUST_PROXY decides whether X-Forwarded-For counts. */
export function clientAddress (request: FastifyRequest): string {
  return normalizeIP(request.ip)
}

function tooManyRequests (context: { statusCode: number, after: string }) {
  return Object.assign(new Error(`Too many requests; retry in ${context.after}`), { statusCode: context.statusCode, code: 'RATE_LIMITED' })
}

/**
 * @fastify/rate-limit, counting in Redis when REDIS_URL is set (so every instance shares the
 * counts) and in process memory otherwise. One API-wide limit per client IP (RATE_LIMIT_MAX; 0
 * turns every limit off); routes add stricter ones with `fastify.requestLimit`. Each limit is its
 * own plugin registration, so a request passes every limit of its route, not just the first.
 */
export default fp(async function rateLimit (fastify) {
  const { config } = fastify
  const enabled = config.rateLimit.max > 0

  let redis: Redis | undefined
  const { redisUrl } = config
  if (enabled && redisUrl !== undefined) {
    redis = new Redis(redisUrl, {
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      commandTimeout: LIMITER_COMMAND_TIMEOUT_MS,
      connectTimeout: LIMITER_CONNECT_TIMEOUT_MS,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1000),
    })
    // Failures surface as skipped counts; the store's client reports the outage itself.
    redis.on('error', () => {})
    // The store has just reached Redis (start-up refuses otherwise), so this normally succeeds at once.
    const client = redis
    await redis.connect().catch((err: Error) => {
      client.disconnect() // or its retries would keep a refused start-up's process alive
      throw new Error(`REDIS_URL: the rate limiter cannot reach Redis at ${redactRedisUrl(redisUrl)} (${err.message})`)
    })
    // QUIT lets Redis finish what it was sent; a Redis that does not answer is simply dropped.
    fastify.addHook('onClose', async () => { await client.quit().catch(() => client.disconnect()) })
  }

  // A flood over a limit is one audit line per client, limit and window (per instance), not one
  // per refused request: the log must not become the flood's amplifier.
  const reported = new OncePerWindow(REPORTED_CLIENTS_MAX)

  function options (limit: RequestLimit): RateLimitPluginOptions {
    const keyOf = limit.key ?? clientAddress
    return {
      global: true,
      max: limit.max,
      timeWindow: WINDOW_MS,
      hook: limit.hook ?? 'onRequest',
      keyGenerator: keyOf,
      ...(redis === undefined ? {} : { redis, nameSpace: `${config.redisKeyPrefix}rate:${limit.name}:` }),
      skipOnError: true,
      // Called for every refused request, with the time left in its window.
      errorResponseBuilder: (request, context) => {
        if (reported.firstInWindow(`${limit.name}:${keyOf(request)}`, Date.now() + context.ttl)) {
          request.audit('rate_limited', { limit: limit.name, userId: limit.userId?.(request) })
        }
        return tooManyRequests(context)
      },
    }
  }

  fastify.decorate('requestLimit', function (limit: RequestLimit): FastifyPluginAsync {
    return fp(async function requestLimit (scope) {
      if (enabled && limit.max > 0) await scope.register(fastifyRateLimit, options(limit))
    }, { name: `rate-limit-${limit.name}` })
  })

  if (!enabled) return
  // The API-wide limit is an application-level hook, so it runs before every route's own hooks
  // (authentication included: a flood of bad tokens is limited too) and before the 404 handler.
  await fastify.register(fastifyRateLimit, { ...options({ name: 'api', max: config.rateLimit.max }), global: false })
  const apiLimit = fastify.rateLimit()
  fastify.addHook('onRequest', async function (request, reply) {
    // Probes opt out on the route (`config: { rateLimit: false }`): a load balancer must never see 429.
    if (request.routeOptions.config.rateLimit !== false) await apiLimit.call(this, request, reply)
  })
}, { name: 'rate-limit', dependencies: ['config', 'audit', 'store'] })
