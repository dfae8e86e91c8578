import { createRequire } from 'node:module'
import fastifyRateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor, type RateLimitPluginOptions } from '@fastify/rate-limit'
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { clientAddress } from '../src/client-address.js'
import { ApiError, StoreUnavailableError } from '../src/errors.js'
import { OncePerWindow } from '../src/once-per-window.js'
import { RedisStore } from '../src/store/redis.js'
import { COUNT_TIMEOUT_MS, type RedisRateCounter } from '../src/store/redis-rate-counter.js'

/** @fastify/rate-limit's own in-process store (not among its typed exports). */
const LocalStore = createRequire(import.meta.url)('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => FastifyRateLimitStore
/** Clients an in-process limit remembers (its LRU's size, the plugin's default). */
const LOCAL_CLIENTS_MAX = 5000

/** Limits count per minute. */
const WINDOW_MS = 60_000
/** Clients whose `rate_limited` line was written this window, remembered per instance (~1 MB at most). */
const REPORTED_CLIENTS_MAX = 10_000

export interface RequestLimit {
  /** names the counter (`<REDIS_KEY_PREFIX>rate:<name>:<key>`) and the limit in audit lines */
  name: string
  /** requests per minute; 0 turns this limit off */
  max: number
  /** what is counted; the client address (src/client-address.ts: TRUST_PROXY decides, an IPv6 /64) when unset */
  key?: (request: FastifyRequest) => string
  /** the audited user, where the limit is per user */
  userId?: (request: FastifyRequest) => string | undefined
  /** `preHandler` when the key needs the validated body; `onRequest` (before any parsing) otherwise */
  hook?: 'onRequest' | 'preHandler'
  /**
   * When the count fails (Redis down, stalled, or refusing writes): false (default) lets the request
   * through to the checks behind it, which fail closed themselves; true answers 503, for a limit
   * whose route could otherwise answer without Redis accepting a single write.
   */
  failClosed?: boolean
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

function tooManyRequests (context: { statusCode: number, after: string }) {
  return new ApiError(context.statusCode, 'RATE_LIMITED', `Too many requests; retry in ${context.after}`)
}

/**
 * @fastify/rate-limit's store interface over the shared Redis counters, under `nameSpace`. A failed
 * count is reported (once per limit and window: an outage must not flood the log) and becomes a
 * StoreUnavailableError (503) for a fail-closed limit, or an error the plugin skips otherwise.
 */
function redisCounterStore (counter: RedisRateCounter, nameSpace: string, limit: RequestLimit, log: FastifyBaseLogger, failures: OncePerWindow): FastifyRateLimitStoreCtor {
  const failClosed = limit.failClosed === true
  const timeoutMs = failClosed ? COUNT_TIMEOUT_MS.asLongAsTheStore : COUNT_TIMEOUT_MS.short

  class RedisCounterStore implements FastifyRateLimitStore {
    readonly #prefix: string

    constructor (_options: unknown, prefix = nameSpace) {
      this.#prefix = prefix
    }

    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number) {
      counter.count(this.#prefix + key, timeWindow, timeoutMs, (err, result) => {
        if (err === null) {
          callback(null, result)
          return
        }
        if (failures.firstInWindow(limit.name, Date.now() + timeWindow)) {
          // The reason only, never the command and its arguments.
          log.warn({ limit: limit.name, reason: err.message }, failClosed
            ? 'rate limiter cannot count: refusing requests with 503'
            : 'rate limiter cannot count: letting requests through uncounted')
        }
        callback(failClosed ? new StoreUnavailableError(err, { reported: true }) : err)
      })
    }

    /** A route with a `config.rateLimit` of its own counts apart, as the plugin's own Redis store does. */
    child (routeOptions: object): FastifyRateLimitStore {
      const route = (routeOptions as { routeInfo?: { method?: unknown, url?: unknown } }).routeInfo
      return new RedisCounterStore(undefined, `${this.#prefix}${String(route?.method ?? '')}${String(route?.url ?? '')}-`)
    }
  }
  return RedisCounterStore
}

/**
 * @fastify/rate-limit's in-process store, one per limit name, shared by every registration of that
 * name (in Redis, the key names do that): a password change counts in the login limit.
 */
function sharedLocalStore (stores: Map<string, FastifyRateLimitStore>, name: string): FastifyRateLimitStoreCtor {
  let store = stores.get(name)
  if (store === undefined) stores.set(name, store = new LocalStore(false, false, LOCAL_CLIENTS_MAX))
  const shared = store
  return class SharedLocalStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number, max: number) {
      shared.incr(key, callback, timeWindow, max)
    }

    child (routeOptions: object): FastifyRateLimitStore {
      return shared.child(routeOptions as Parameters<FastifyRateLimitStore['child']>[0])
    }
  }
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

  // Counted on the store's batched connection: a request's count leaves with its access check.
  const counter = enabled && fastify.store instanceof RedisStore ? fastify.store.rateCounter : undefined

  // A flood over a limit is one audit line per client, limit and window (per instance), not one
  // per refused request: the log must not become the flood's amplifier.
  const reported = new OncePerWindow(REPORTED_CLIENTS_MAX)
  const failuresReported = new OncePerWindow(100) // keyed by limit name: a handful of keys
  const localStores = new Map<string, FastifyRateLimitStore>()

  function options (limit: RequestLimit): RateLimitPluginOptions {
    const keyOf = limit.key ?? clientAddress
    return {
      global: true,
      max: limit.max,
      timeWindow: WINDOW_MS,
      hook: limit.hook ?? 'onRequest',
      keyGenerator: keyOf,
      store: counter === undefined ? sharedLocalStore(localStores, limit.name) : redisCounterStore(counter, `${config.redisKeyPrefix}rate:${limit.name}:`, limit, fastify.log, failuresReported),
      skipOnError: limit.failClosed !== true,
      // Called for every refused request, with the time left in its window.
      errorResponseBuilder: (request, context) => {
        if (reported.firstInWindow(`${limit.name}:${keyOf(request)}`, Date.now() + context.ttl)) {
          request.audit('rate_limited', { limit: limit.name, ip: clientAddress(request), userId: limit.userId?.(request) })
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
  // The API-wide limit is an application-level hook, so it decides before every route's own hooks and
  // before the 404 handler: a flood of bad tokens gets 429s. A protected route's token check has been
  // started already (plugins/authenticate.ts: its read leaves with this count), so a refused request
  // still costs a signature check and that read, never more.
  await fastify.register(fastifyRateLimit, { ...options({ name: 'api', max: config.rateLimit.max }), global: false })
  const apiLimit = fastify.rateLimit()
  fastify.addHook('onRequest', function (request, reply, done) {
    // Probes opt out on the route (`config: { rateLimit: false }`): a load balancer must never see
    // 429. A route with a `config.rateLimit` of its own has it instead, as @fastify/rate-limit has it.
    if (request.routeOptions.config.rateLimit !== undefined) return done()
    apiLimit.call(this, request, reply).then(() => done(), done)
  })
  // After 'authenticate': its hook starts a protected route's access check before this one counts.
}, { name: 'rate-limit', dependencies: ['config', 'audit', 'store', 'authenticate'] })
